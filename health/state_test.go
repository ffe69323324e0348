package health

import (
	"math/rand/v2"
	"testing"
	"time"
)

const (
	tInterval   = 10 * time.Second
	tRetryDelay = 2 * time.Second
)

func timing(retries, rise, fall int, alpha bool) Spec {
	s := Spec{Interval: tInterval, RetryDelay: tRetryDelay, Retries: retries, Rise: rise, Fall: fall, Alpha: alpha}
	s.Rise, s.Fall = max(s.Rise, 1), max(s.Fall, 1)
	return s
}

var (
	ok   = Result{Up: true, Weight: WeightUnchanged}
	fail = Result{Weight: WeightUnchanged}
)

func okWeight(w int) Result { return Result{Up: true, Weight: w} }

type stepWant struct {
	r     Result
	ch    change
	delay time.Duration
}

func TestStep(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		steps []stepWant
	}{
		{"keepalived default: retry 1, down after 2 failures, up on first success", timing(1, 0, 0, false), []stepWant{
			{fail, noChange, tRetryDelay},
			{fail, wentDown, tInterval},
			{fail, noChange, tInterval}, // no retries while down
			{ok, wentUp, tInterval},
			{ok, noChange, tInterval},
		}},
		{"retry 0: down on the first failure", timing(0, 0, 0, false), []stepWant{
			{fail, wentDown, tInterval},
			{ok, wentUp, tInterval},
		}},
		{"success between retries resets them", timing(2, 0, 0, false), []stepWant{
			{fail, noChange, tRetryDelay},
			{fail, noChange, tRetryDelay},
			{ok, noChange, tInterval},
			{fail, noChange, tRetryDelay},
			{fail, noChange, tRetryDelay},
			{fail, wentDown, tInterval},
		}},
		{"fall 2 with retry 1: four failed probes", timing(1, 0, 2, false), []stepWant{
			{fail, noChange, tRetryDelay},
			{fail, noChange, tInterval}, // first check failed
			{fail, noChange, tRetryDelay},
			{fail, wentDown, tInterval},
		}},
		{"a success resets fall", timing(0, 0, 2, false), []stepWant{
			{fail, noChange, tInterval},
			{ok, noChange, tInterval},
			{fail, noChange, tInterval},
			{fail, wentDown, tInterval},
		}},
		{"alpha starts down; rise 3 needs three successes in a row", timing(1, 3, 0, true), []stepWant{
			{ok, noChange, tInterval},
			{ok, noChange, tInterval},
			{fail, noChange, tInterval},
			{ok, noChange, tInterval},
			{ok, noChange, tInterval},
			{ok, wentUp, tInterval},
		}},
		{"alpha: first success brings it up", timing(1, 0, 0, true), []stepWant{
			{fail, noChange, tInterval},
			{ok, wentUp, tInterval},
		}},
		{"dynamic weight while up", timing(0, 0, 0, false), []stepWant{
			{okWeight(5), weightChanged, tInterval},
			{okWeight(5), noChange, tInterval},
			{ok, noChange, tInterval}, // exit 0: weight unchanged
			{okWeight(0), weightChanged, tInterval},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := initialState(&tt.spec)
			for i, w := range tt.steps {
				ch, d := st.step(w.r, &tt.spec)
				if ch != w.ch || d != w.delay {
					t.Fatalf("step %d (%+v): got %v, %v; want %v, %v", i, w.r, ch, d, w.ch, w.delay)
				}
			}
		})
	}
}

func TestStepWeightCarriedToUp(t *testing.T) {
	s := timing(0, 2, 0, true)
	st := initialState(&s)
	if st.up || st.weight != WeightUnchanged {
		t.Fatalf("initial %+v", st)
	}
	st.step(okWeight(7), &s)
	if ch, _ := st.step(ok, &s); ch != wentUp || st.weight != 7 {
		t.Errorf("got %v weight %d, want wentUp with weight 7", ch, st.weight)
	}
}

// refState is an obviously-correct model of the rules in the package doc: from UP,
// DOWN after exactly (Retries+1)×Fall consecutive failed probes, the delay being
// RetryDelay except after every (Retries+1)th; from DOWN, UP after Rise consecutive
// successes.
type refState struct {
	up        bool
	failsInUp int
	oksInDown int
}

func (r *refState) step(ok bool, s *Spec) (change, time.Duration) {
	if ok {
		r.failsInUp = 0
		if r.up {
			return noChange, s.Interval
		}
		r.oksInDown++
		if r.oksInDown == s.Rise {
			r.up, r.oksInDown = true, 0
			return wentUp, s.Interval
		}
		return noChange, s.Interval
	}
	r.oksInDown = 0
	if !r.up {
		return noChange, s.Interval
	}
	r.failsInUp++
	if r.failsInUp == (s.Retries+1)*s.Fall {
		r.up, r.failsInUp = false, 0
		return wentDown, s.Interval
	}
	if r.failsInUp%(s.Retries+1) != 0 {
		return noChange, s.RetryDelay
	}
	return noChange, s.Interval
}

func TestStepMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		s := timing(rng.IntN(4), rng.IntN(4), rng.IntN(4), rng.IntN(2) == 0)
		st, ref := initialState(&s), refState{up: !s.Alpha}
		pFail := rng.Float64()
		for i := range 200 {
			r := ok
			if rng.Float64() < pFail {
				r = fail
			}
			ch, d := st.step(r, &s)
			wch, wd := ref.step(r.Up, &s)
			if ch != wch || d != wd || st.up != ref.up {
				t.Fatalf("spec %+v step %d (%v): got %v %v up=%v, reference %v %v up=%v",
					s, i, r.Up, ch, d, st.up, wch, wd, ref.up)
			}
		}
	}
}
