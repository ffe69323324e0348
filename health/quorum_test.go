package health

import "testing"

// TestQuorumKeepalivedSample walks keepalived's quorum sample (05-acassen-keepalived-
// quorum-wrr.conf): ten servers of weight 1, quorum 7, hysteresis 2. Quorum is gained
// at 9 live servers and lost below 5.
func TestQuorumKeepalivedSample(t *testing.T) {
	q := Quorum{Min: 7, Hysteresis: 2}
	if q.Initial(0) {
		t.Fatal("alpha start with nothing alive has quorum")
	}
	if !q.Initial(9) || q.Initial(8) {
		t.Error("initial quorum threshold is not 9")
	}
	steps := []struct {
		live int64
		want bool
	}{
		{1, false}, {5, false}, {7, false}, {8, false}, {9, true}, {10, true},
		{7, true}, {6, true}, {5, true}, {4, false}, {5, false}, {8, false}, {9, true},
	}
	up := q.Initial(0)
	for _, s := range steps {
		up = q.Next(up, s.live)
		if up != s.want {
			t.Fatalf("live %d: quorum %v, want %v", s.live, up, s.want)
		}
	}
}

func TestQuorumEdges(t *testing.T) {
	// Zero value is keepalived's default quorum 1.
	var q Quorum
	if q.Initial(0) || !q.Initial(1) || q.Next(true, 0) || !q.Next(false, 1) {
		t.Error("zero Quorum does not behave as quorum 1")
	}
	// Hysteresis reaching below zero: losing every server still loses quorum
	// (keepalived's "!weight_sum").
	q = Quorum{Min: 1, Hysteresis: 3}
	if !q.Next(true, 1) || q.Next(true, 0) {
		t.Error("quorum kept with no live weight")
	}
}

func TestLiveWeight(t *testing.T) {
	ms := []Member{{true, 3}, {false, 5}, {true, -2}, {true, 0}, {true, 4}}
	if got := LiveWeight(ms); got != 7 {
		t.Errorf("LiveWeight = %d, want 7", got)
	}
}
