package keepalived

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/gvs-lb/gvs/internal/config"
)

// FuzzKeepalived checks Import on any input: it never panics, answers
// either Errors (each with the file and a line inside it) or TOML that Parse accepts
// and that holds every note, and does so deterministically. Includes are served from
// memory (one file, and the input itself, so cycles are reachable). Seeds:
// testdata/fuzz/FuzzKeepalived (keepalived's samples, the seeds' configurations and
// the messy testdata; see testdata/README.md).
func FuzzKeepalived(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "etc/keepalived.conf"
		files := map[string]string{
			name:           string(data),
			"etc/inc.conf": "virtual_server 198.18.0.1 80 {\nlb_kind DR\nreal_server 198.18.1.1 80\n}\n",
		}
		opt := memFS(files)
		if len(data)%2 == 1 {
			opt.ConfigID = "a"
		}
		im, err := Import(name, data, opt)
		im2, err2 := Import(name, data, opt)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			var es config.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is %T, want Errors: %v", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, e := range es {
				if e.File != name && e.File != "etc/inc.conf" {
					t.Errorf("error names file %q: %v", e.File, e)
				}
				if e.File == name && (e.Line < 1 || e.Line > lines) {
					t.Errorf("error line %d outside the input (%d lines): %v", e.Line, lines, e)
				}
			}
			return
		}
		if !bytes.Equal(im.TOML, im2.TOML) || !reflect.DeepEqual(im.Notes, im2.Notes) {
			t.Fatalf("not deterministic")
		}
		if !utf8.Valid(im.TOML) {
			t.Fatalf("TOML is not UTF-8")
		}
		checkImported(t, im)
	})
}
