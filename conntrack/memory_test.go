//go:build !race

package conntrack

import "testing"

// TestMemoryPerConn checks the budget of 100 bytes of heap per connection at
// 1,000,000 connections (entry slabs, bucket arrays and wheels included).
func TestMemoryPerConn(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 1,000,000 connections")
	}
	got := bytesPerConn(t, 1_000_000)
	t.Logf("%.1f bytes/conn at 1,000,000 connections", got)
	if got > 100 {
		t.Fatalf("%.1f bytes/conn, budget 100", got)
	}
}
