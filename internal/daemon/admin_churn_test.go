package daemon

import (
	"fmt"
	"strings"
	"testing"
)

// TestAdmChurnKeepsNoRecordOfGoneServices adds services of fresh addresses with
// gvs adm, adds, edits and deletes a real server of each and deletes them: the
// controller's record of what gvs adm changed (for the warnings of a reload that
// overrides a change) keeps nothing of them, so a script churning services does
// not grow it; a change of a service of the file stays recorded, and the reload
// that overrides it still names the command.
func TestAdmChurnKeepsNoRecordOfGoneServices(t *testing.T) {
	file := admFileConf
	ta := newTestDirector(t, file, nil)
	ta.ok("-e -t 198.18.0.100:80 -r 198.18.0.5:80 -w 5")
	for i := range 600 {
		vip := fmt.Sprintf("-t 198.18.%d.%d:80", 64+i/250, 1+i%250)
		rs := fmt.Sprintf(" -r 198.19.%d.%d:80", 64+i/250, 1+i%250)
		ta.ok("-A " + vip + " -s rr")
		ta.ok("-a " + vip + rs + " -g -w 1")
		ta.ok("-e " + vip + rs + " -g -w 2")
		if i%2 == 0 {
			ta.ok("-d " + vip + rs)
		}
		ta.ok("-D " + vip)
		// The adm commands' replies come after the record is made: reading it
		// here races with nothing.
		if n := len(ta.d.st.touched); n != 1 {
			t.Fatalf("after %d services added and deleted, %d changes recorded, want the file's service's 1", i+1, n)
		}
		if n := len(ta.d.st.admLines); n != 1 {
			t.Fatalf("after %d services added and deleted, %d command lines kept, want the file's service's 1", i+1, n)
		}
	}
	if err := ta.reloadText(strings.Replace(file, `address = "198.18.0.5:80"`, `address = "198.18.0.5:80"
  weight = 3`, 1)); err != nil {
		t.Fatal(err)
	}
	if logs := ta.logs.String(); !strings.Contains(logs, `command="-e -t 198.18.0.100:80 -r 198.18.0.5:80 -w 5"`) {
		t.Errorf("the override of the file service's adm edit is not logged with its command:\n%s", logs)
	}
}

// admFileConf is a director's file of one service with one real server, which
// gvs adm changes and a reload then overrides.
const admFileConf = directorConf + `
[[service]]
address = "198.18.0.100:80"
  [[service.real_server]]
  address = "198.18.0.5:80"
`
