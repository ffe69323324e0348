package track

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/script"
	"github.com/gvs-lb/gvs/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.RunMain(m)) }

func TestContribution(t *testing.T) {
	for _, tc := range []struct {
		st      State
		weight  int
		reverse bool
		fault   bool
		delta   int
	}{
		{Up, 0, false, false, 0},
		{Down, 0, false, true, 0},
		{Up, 0, true, true, 0}, // reverse: FAULT while up
		{Down, 0, true, false, 0},
		{Init, 0, false, true, 0}, // held back until the first result
		{Init, -20, false, false, 0},
		{Init, 20, false, false, 0},
		{Up, 20, false, false, 20},
		{Down, 20, false, false, 0},
		{Up, -20, false, false, 0},
		{Down, -20, false, false, -20},
		{Up, 20, true, false, -20}, // reverse: the weight is taken off while up
		{Down, 20, true, false, 0},
		{Down, -20, true, false, 20},
		{Up, -20, true, false, 0},
	} {
		fault, delta := Contribution(tc.st, tc.weight, tc.reverse)
		if fault != tc.fault || delta != tc.delta {
			t.Errorf("Contribution(%s, weight %d, reverse %v) = fault %v delta %d, want %v %d", tc.st, tc.weight, tc.reverse, fault, delta, tc.fault, tc.delta)
		}
	}
}

func TestFileContribution(t *testing.T) {
	for _, tc := range []struct {
		value   int64
		weight  int
		reverse bool
		fault   bool
		delta   int
	}{
		{0, 0, false, false, 0},
		{5, 0, false, true, 0},
		{0, 0, true, true, 0},
		{5, 0, true, false, 0},
		{7, 1, false, false, 7},
		{-7, 1, false, false, -7},
		{7, 3, false, false, 21},
		{7, 3, true, false, -21},
		{100, 3, false, false, 253}, // capped
		{-84, 3, false, false, -252},
		{-85, 3, false, true, 0}, // -255: FAULT
		{-254, 1, false, true, 0},
		{-253, 1, false, false, -253},
		{1 << 31, 254, false, false, 253},
		{-(1 << 31), 254, true, false, 253},
	} {
		fault, delta := FileContribution(tc.value, tc.weight, tc.reverse)
		if fault != tc.fault || delta != tc.delta {
			t.Errorf("FileContribution(%d, weight %d, reverse %v) = fault %v delta %d, want %v %d", tc.value, tc.weight, tc.reverse, fault, delta, tc.fault, tc.delta)
		}
	}
}

func TestParseFileValue(t *testing.T) {
	for _, tc := range []struct {
		in string
		v  int64
		ok bool
	}{
		{"", 0, true},
		{"12\n", 12, true},
		{"  -12 trailing", -12, true},
		{"+7", 7, true},
		{"0x1F", 31, true},
		{"0X1f", 31, true},
		{"010", 8, true},
		{"08", 0, true}, // octal: the 8 is not a digit
		{"0x", 0, true}, // "0" then junk
		{"abc", 0, true},
		{"2147483647", 2147483647, true},
		{"2147483648", 0, false},
		{"-2147483648", -2147483648, true},
		{"-2147483649", 0, false},
		{"99999999999999999999999", 0, false},
	} {
		v, ok := ParseFileValue([]byte(tc.in))
		if v != tc.v || ok != tc.ok {
			t.Errorf("ParseFileValue(%q) = %d, %v; want %d, %v", tc.in, v, ok, tc.v, tc.ok)
		}
	}
}

func FuzzParseFileValue(f *testing.F) {
	for _, s := range []string{"", "12\n", "-0x7fffffff", "0777", "  +3 x", "2147483648", "-2147483648"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := ParseFileValue(b)
		if !ok && v != 0 {
			t.Fatalf("%q: not ok but value %d", b, v)
		}
		if v < -(1<<31) || v > 1<<31-1 {
			t.Fatalf("%q: value %d outside 32 bits", b, v)
		}
		// A plain decimal number reads as strconv reads it.
		if n, err := strconv.ParseInt(string(b), 10, 32); err == nil && (len(b) < 2 || b[0] != '0' && (b[0] != '-' && b[0] != '+' || b[1] != '0')) {
			if !ok || v != n {
				t.Fatalf("%q: got %d %v, strconv says %d", b, v, ok, n)
			}
		}
	})
}

// fakeRunner answers each Run with the next queued result and counts runs.
type fakeRunner struct {
	mu      sync.Mutex
	results []script.Result
	errs    []error
	runs    int
	cmds    []script.Cmd
}

func (f *fakeRunner) push(ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := script.Result{}
	if !ok {
		r.Exit = 1
	}
	f.results = append(f.results, r)
	f.errs = append(f.errs, nil)
}

func (f *fakeRunner) Run(_ context.Context, c script.Cmd) (script.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	f.cmds = append(f.cmds, c)
	if len(f.results) == 0 {
		return script.Result{Exit: 1}, nil
	}
	r, err := f.results[0], f.errs[0]
	f.results, f.errs = f.results[1:], f.errs[1:]
	return r, err
}

func (f *fakeRunner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs
}

func TestScriptRiseFall(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rise, fall int
		initFail   bool
		results    string // 1 success, 0 failure
		states     string // state after each: I init, U up, D down
	}{
		{"one success is enough at start", 3, 2, false, "1", "U"},
		{"one failure is enough at start", 3, 2, false, "0", "D"},
		{"fall failures in a row", 1, 3, false, "1001000", "UUUUUUD"},
		{"rise successes in a row", 3, 1, false, "0110111", "DDDDDDU"},
		{"init_fail starts down and needs rise", 2, 1, true, "11", "DU"},
		{"flapping never falls", 1, 2, false, "1010101", "UUUUUUU"},
		{"rise 1 fall 1 follows each result", 1, 1, false, "1010", "UDUD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScript(ScriptConfig{Name: "chk", Interval: time.Second, Rise: tc.rise, Fall: tc.fall, InitFail: tc.initFail}, &fakeRunner{}, RealClock{}, nil, nil)
			if want := Init; tc.initFail {
				want = Down
				if s.State() != want {
					t.Fatalf("start: %s, want %s", s.State(), want)
				}
			} else if s.State() != want {
				t.Fatalf("start: %s, want %s", s.State(), want)
			}
			got := ""
			for _, r := range tc.results {
				s.record(r == '1', "")
				got += s.State().String()[:1]
			}
			if got != tc.states {
				t.Errorf("states %s, want %s", got, tc.states)
			}
		})
	}
}

// TestScriptRunSchedule runs a script tracker on a fake clock: the first run at
// once, then one per interval; it falls after fall failures and says so.
func TestScriptRunSchedule(t *testing.T) {
	clk := testutil.NewClock(t)
	fr := &fakeRunner{}
	for range 2 {
		fr.push(true)
	}
	for range 3 {
		fr.push(false)
	}
	var changes sync.WaitGroup
	changes.Add(2) // up, then down
	s := NewScript(ScriptConfig{Name: "chk_web", Cmd: script.Cmd{Argv: []string{"/bin/true"}}, Interval: 2 * time.Second, Rise: 1, Fall: 3},
		fr, clk, nil, changes.Done)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	clk.BlockUntil(1)
	if fr.count() != 1 || s.State() != Up {
		t.Fatalf("after the first run: %d runs, %s", fr.count(), s.State())
	}
	if fr.cmds[0].Timeout != 2*time.Second {
		t.Errorf("timeout %v, want the interval (keepalived's default)", fr.cmds[0].Timeout)
	}
	for i := 2; i <= 4; i++ {
		clk.Advance(2 * time.Second)
		clk.BlockUntil(1)
		if fr.count() != i || s.State() != Up {
			t.Fatalf("run %d: %d runs, %s; want still UP (fall 3)", i, fr.count(), s.State())
		}
	}
	clk.Advance(2 * time.Second)
	clk.BlockUntil(1)
	if s.State() != Down || s.LastReason() != "exit 1" {
		t.Fatalf("after 3 failures: %s (%q), want DOWN (exit 1)", s.State(), s.LastReason())
	}
	changes.Wait()
}

// TestScriptHangIsKilled runs a real script that never exits: it is killed at its
// timeout, and the run counts as a failure.
func TestScriptHangIsKilled(t *testing.T) {
	d := t.TempDir()
	pidFile := filepath.Join(d, "pid")
	s := NewScript(ScriptConfig{Name: "hang", Interval: time.Second, Cmd: script.Cmd{
		Shell: "sleep 60 & echo $! > " + pidFile + "; wait", Timeout: 200 * time.Millisecond}},
		&script.Runner{Grace: 100 * time.Millisecond}, RealClock{}, nil, nil)
	s.once(context.Background())
	if s.State() != Down || s.LastReason() != "killed at timeout 200ms" {
		t.Fatalf("state %s (%q), want DOWN, killed at timeout", s.State(), s.LastReason())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(b[:len(b)-1]))
	testutil.Eventually(t, 5*time.Second, func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || containsState(st, 'Z')
	}, "the hung script's child to die")

	// A script that does not exist is a failure too, with the reason.
	s = NewScript(ScriptConfig{Name: "missing", Interval: time.Second, Cmd: script.Cmd{Argv: []string{"/nonexistent/chk"}}},
		&script.Runner{}, RealClock{}, nil, nil)
	s.once(context.Background())
	if s.State() != Down || s.LastReason() == "" {
		t.Fatalf("missing script: %s (%q)", s.State(), s.LastReason())
	}
}

func containsState(stat []byte, st byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] == st
		}
	}
	return false
}

func TestFileTracker(t *testing.T) {
	p := filepath.Join(t.TempDir(), "prio")
	clk := testutil.NewClock(t)
	changed := make(chan struct{}, 4)
	f := NewFile("prio", p, time.Second, clk, nil, func() { changed <- struct{}{} })
	if f.Value() != 0 {
		t.Fatalf("missing file: %d, want 0", f.Value())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	for _, tc := range []struct {
		content string
		want    int64
		change  bool
	}{
		{"10\n", 10, true},
		{"10", 10, false},
		{"-5", -5, true},
		{"99999999999", -5, false}, // out of range: ignored
		{"junk", 0, true},
	} {
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		clk.BlockUntil(1)
		clk.Advance(time.Second)
		clk.BlockUntil(1)
		if f.Value() != tc.want {
			t.Errorf("%q: value %d, want %d", tc.content, f.Value(), tc.want)
		}
		select {
		case <-changed:
			if !tc.change {
				t.Errorf("%q: OnChange called", tc.content)
			}
		default:
			if tc.change {
				t.Errorf("%q: OnChange not called", tc.content)
			}
		}
	}
}

func TestProcessMatches(t *testing.T) {
	nginx := Proc{Comm: "nginx", Cmdline: []string{"/usr/sbin/nginx", "-g", "daemon off;"}}
	worker := Proc{Comm: "nginx", Cmdline: []string{"nginx: worker process"}}
	for _, tc := range []struct {
		name string
		cfg  ProcessConfig
		p    Proc
		want bool
	}{
		{"comm", ProcessConfig{Process: "nginx"}, nginx, true},
		{"comm of a worker", ProcessConfig{Process: "nginx"}, worker, true},
		{"other comm", ProcessConfig{Process: "haproxy"}, nginx, false},
		{"full command", ProcessConfig{Process: "/usr/sbin/nginx", FullCommand: true}, nginx, true},
		{"full command not comm", ProcessConfig{Process: "nginx", FullCommand: true}, nginx, false},
		{"exact", ProcessConfig{Process: "/usr/sbin/nginx", FullCommand: true, Match: MatchExact, Params: []string{"-g", "daemon off;"}}, nginx, true},
		{"exact, fewer", ProcessConfig{Process: "/usr/sbin/nginx", FullCommand: true, Match: MatchExact, Params: []string{"-g"}}, nginx, false},
		{"exact without params needs none", ProcessConfig{Process: "/usr/sbin/nginx", FullCommand: true, Match: MatchExact}, nginx, false},
		{"partial", ProcessConfig{Process: "/usr/sbin/nginx", FullCommand: true, Match: MatchPartial, Params: []string{"-g"}}, nginx, true},
		{"partial needs whole args", ProcessConfig{Process: "/usr/sbin/nginx", FullCommand: true, Match: MatchPartial, Params: []string{"-g", "daemon"}}, nginx, false},
		{"initial", ProcessConfig{Process: "/usr/sbin/nginx", FullCommand: true, Match: MatchInitial, Params: []string{"-g", "daemon"}}, nginx, true},
		{"initial, only the last", ProcessConfig{Process: "/usr/sbin/nginx", FullCommand: true, Match: MatchInitial, Params: []string{"-", "daemon"}}, nginx, false},
		{"too many", ProcessConfig{Process: "/usr/sbin/nginx", FullCommand: true, Match: MatchPartial, Params: []string{"-g", "daemon off;", "x"}}, nginx, false},
	} {
		if got := tc.cfg.Matches(&tc.p); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestScanProc(t *testing.T) {
	root := t.TempDir()
	mk := func(pid int, stat, cmdline string) {
		d := filepath.Join(root, strconv.Itoa(pid))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644)
		os.WriteFile(filepath.Join(d, "cmdline"), []byte(cmdline), 0o644)
	}
	mk(10, "10 (nginx) S 1 2 3", "/usr/sbin/nginx\x00-g\x00daemon off;\x00")
	mk(11, "11 (my (odd) name) R 1", "odd\x00")
	mk(12, "12 (nginx) Z 1", "")
	mk(13, "13 (kworker/0:1) I 2", "")
	os.Mkdir(filepath.Join(root, "self"), 0o755)
	got, err := ScanProc(root, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Proc{
		{PID: 10, Comm: "nginx", Cmdline: []string{"/usr/sbin/nginx", "-g", "daemon off;"}},
		{PID: 11, Comm: "my (odd) name", Cmdline: []string{"odd"}},
		{PID: 13, Comm: "kworker/0:1"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ScanProc = %v, want %v", got, want)
	}

	// The real /proc holds this test.
	self, err := ScanProc("/proc", true)
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	exe, _ := os.Executable()
	found := false
	for _, p := range self {
		if p.PID == me {
			found = len(p.Cmdline) > 0 && filepath.Base(p.Cmdline[0]) == filepath.Base(exe)
		}
	}
	if !found {
		t.Errorf("ScanProc(/proc) did not find this process (%d, %s)", me, exe)
	}
}

func TestProcessQuorumDelays(t *testing.T) {
	var mu sync.Mutex
	n := 2
	procs := func() ([]Proc, error) {
		mu.Lock()
		defer mu.Unlock()
		out := make([]Proc, n)
		for i := range out {
			out[i] = Proc{PID: 100 + i, Comm: "nginx"}
		}
		return out, nil
	}
	set := func(v int) {
		mu.Lock()
		n = v
		mu.Unlock()
	}
	clk := testutil.NewClock(t)
	changes := make(chan State, 8)
	var p *Process
	p = NewProcess(ProcessConfig{Name: "nginx", Process: "nginx", Quorum: 2, QuorumMax: 3, Interval: time.Second,
		TerminateDelay: 3 * time.Second, ForkDelay: time.Second}, procs, clk, nil, func() { changes <- p.State() })
	if p.State() != Up || p.Count() != 2 {
		t.Fatalf("start: %s with %d, want UP with 2", p.State(), p.Count())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	tick := func() {
		clk.BlockUntil(1)
		clk.Advance(time.Second)
		clk.BlockUntil(1)
	}
	expect := func(when string, want State, change bool) {
		t.Helper()
		if p.State() != want {
			t.Fatalf("%s: %s, want %s", when, p.State(), want)
		}
		select {
		case <-changes:
			if !change {
				t.Fatalf("%s: change reported", when)
			}
		default:
			if change {
				t.Fatalf("%s: no change reported", when)
			}
		}
	}
	set(1) // below quorum: down after terminate_delay 3s
	tick()
	expect("1s after losing quorum", Up, false)
	set(2) // back within the delay: never seen
	tick()
	expect("quorum back", Up, false)
	set(4) // above quorum_max
	tick() // first seen
	tick()
	tick()
	expect("2s after seeing too many", Up, false)
	tick()
	expect("3s after seeing too many", Down, true)
	set(3) // back: up after fork_delay 1s
	tick()
	expect("quorum regained, first seen", Down, false)
	tick()
	expect("1s after quorum regained", Up, true)
}

// BenchmarkScanProc measures one scan of this host's /proc, what each
// track_process costs per interval.
func BenchmarkScanProc(b *testing.B) {
	for _, cmdline := range []bool{false, true} {
		b.Run("cmdline="+strconv.FormatBool(cmdline), func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				ps, err := ScanProc("/proc", cmdline)
				if err != nil {
					b.Fatal(err)
				}
				n = len(ps)
			}
			b.ReportMetric(float64(n), "procs")
		})
	}
}

// TestStateAllocs: what the VRRP runner calls each advert interval allocates
// nothing.
func TestStateAllocs(t *testing.T) {
	s := NewScript(ScriptConfig{Name: "chk", Interval: time.Second, InitFail: true}, &fakeRunner{}, RealClock{}, nil, nil)
	p := filepath.Join(t.TempDir(), "v")
	if err := os.WriteFile(p, []byte("7"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewFile("f", p, time.Second, RealClock{}, nil, nil)
	sink, calls := 0, 0
	n := testing.AllocsPerRun(1000, func() {
		_, d1 := Contribution(s.State(), -20, false)  // down (init_fail): -20
		_, d2 := FileContribution(f.Value(), 3, true) // 7×3 reversed: -21
		sink += d1 + d2
		calls++
	})
	if sink != -41*calls {
		t.Errorf("deltas summed to %d over %d polls, want %d", sink, calls, -41*calls)
	}
	if n != 0 {
		t.Errorf("%v allocations per poll, want 0", n)
	}
}

// TestTrackersRace reads the trackers' state from several goroutines while they
// run (the VRRP runner polls them from its own goroutine); run with -race.
func TestTrackersRace(t *testing.T) {
	fr := &fakeRunner{}
	for range 200 {
		fr.push(true)
		fr.push(false)
	}
	changes := 0
	var mu sync.Mutex
	onChange := func() { mu.Lock(); changes++; mu.Unlock() }
	s := NewScript(ScriptConfig{Name: "chk", Interval: time.Microsecond, Rise: 1, Fall: 1}, fr, RealClock{}, nil, onChange)
	p := filepath.Join(t.TempDir(), "v")
	f := NewFile("f", p, time.Microsecond, RealClock{}, nil, onChange)
	pr := NewProcess(ProcessConfig{Name: "p", Process: "x", Interval: time.Microsecond}, func() ([]Proc, error) {
		return []Proc{{PID: 1, Comm: "x"}}, nil
	}, RealClock{}, nil, onChange)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{s.Run, f.Run, pr.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); run(ctx) }()
	}
	var readers sync.WaitGroup
	for i := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for j := range 2000 {
				_ = s.State()
				_ = s.LastReason()
				_ = f.Value()
				_ = pr.State()
				if (i+j)%100 == 0 {
					os.WriteFile(p, []byte(strconv.Itoa(j)), 0o644)
				}
			}
		}()
	}
	readers.Wait()
	testutil.Eventually(t, 10*time.Second, func() bool { return fr.count() >= 400 }, "the script to run through its results")
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if changes == 0 {
		t.Error("no change seen")
	}
}

// TestScriptRunsAsUser runs a vrrp_script as its configured user (nobody): the
// script checks its own uid with id -u and succeeds only as that user.
func TestScriptRunsAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	nobody, err := script.LookupUser("nobody", "")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	cmd := script.Cmd{Argv: []string{"/bin/sh", "-c", `test "$(id -u)" = ` + strconv.Itoa(int(nobody.UID))}, User: nobody, Timeout: 5 * time.Second}
	s := NewScript(ScriptConfig{Name: "as_nobody", Interval: time.Second, Cmd: cmd}, &script.Runner{Secure: true}, RealClock{}, nil, nil)
	s.once(context.Background())
	if s.State() != Up {
		t.Fatalf("as nobody: %s (%q), want UP", s.State(), s.LastReason())
	}
	// The same script as root fails its own check.
	cmd.User = nil
	s = NewScript(ScriptConfig{Name: "as_root", Interval: time.Second, Cmd: cmd}, &script.Runner{}, RealClock{}, nil, nil)
	s.once(context.Background())
	if s.State() != Down {
		t.Fatalf("as root: %s, want DOWN", s.State())
	}
}
