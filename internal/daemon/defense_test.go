package daemon

import (
	"reflect"
	"slices"
	"testing"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/config"
)

// TestDefenseDefaultsAgree: the config's defaults are the Director's (both are
// Linux's), so a director started without the keys behaves as one given them.
func TestDefenseDefaultsAgree(t *testing.T) {
	got := defenseOptions(&config.Default().Director.Defense)
	if want := dataplane.DefaultDefense(); !reflect.DeepEqual(got, want) {
		t.Errorf("config defaults map to %+v, the Director's are %+v", got, want)
	}
	var d config.Defense
	d.VLANs.Add(30)
	d.VLANs.Add(7)
	if got := defenseOptions(&d).VLANs; !slices.Equal(got, []uint16{7, 30}) {
		t.Errorf("vlans map to %v", got)
	}
}
