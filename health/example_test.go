package health_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gvs-lb/gvs/health"
)

// The daemon's side: build specs from the config, apply the initial states, then
// apply every Transition to the tables.
func ExampleMonitor() {
	spec := health.Defaults(health.HTTP)
	spec.ID = "tcp/198.18.0.100:80 198.18.0.5:80"
	spec.Target = netip.MustParseAddrPort("198.18.0.5:80")
	spec.Path = "/healthz"
	spec.Interval, spec.Timeout = 5*time.Second, 3*time.Second
	spec.Retries, spec.RetryDelay = 3, 2*time.Second

	m := health.NewMonitor(health.Options{
		Logger: slog.Default(),
		Notify: func(t health.Transition) {
			// e.g. pool.SetUp(t.ID, t.Up); if t.Weight != health.WeightUnchanged { pool.SetWeight(...) }
		},
	})
	if err := m.Update([]health.Spec{spec}); err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range m.Snapshot() {
		fmt.Println(st.ID, "starts up:", st.Up)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a real daemon cancels on SIGTERM
	_ = m.Run(ctx)
	// Output: tcp/198.18.0.100:80 198.18.0.5:80 starts up: true
}

// keepalived's quorum sample: quorum 7, hysteresis 2 over ten servers of weight 1.
func ExampleQuorum() {
	q := health.Quorum{Min: 7, Hysteresis: 2}
	up := q.Initial(0) // alpha: every server starts down
	for _, live := range []int64{8, 9, 5, 4} {
		up = q.Next(up, live)
		fmt.Printf("%d live: quorum %v\n", live, up)
	}
	// Output:
	// 8 live: quorum false
	// 9 live: quorum true
	// 5 live: quorum true
	// 4 live: quorum false
}
