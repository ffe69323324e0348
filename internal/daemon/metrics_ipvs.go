package daemon

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gvs-lb/gvs/ipvs"
)

// nodeIPVSCollector exports the director's tables under the names node_exporter's
// ipvs collector gives a kernel IPVS director (metrics_node_ipvs), so dashboards and
// alerts written for those series work on a gvs director unchanged.
//
// What node_exporter reads from /proc/net/ip_vs_stats and /proc/net/ip_vs, gvs
// reads from the Director:
//
//	node_ipvs_connections_total, node_ipvs_incoming_packets_total,
//	node_ipvs_outgoing_packets_total, node_ipvs_incoming_bytes_total,
//	node_ipvs_outgoing_bytes_total    director-wide counters without labels: the sum
//	                                  over every service since start (a deleted
//	                                  service's traffic stays counted, as in the
//	                                  kernel's totals; gvs adm -Z does not reset them)
//	node_ipvs_backend_connections_active, node_ipvs_backend_connections_inactive,
//	node_ipvs_backend_weight          per real server of a service, labelled
//	                                  local_address, local_port, remote_address,
//	                                  remote_port, proto, local_mark
//
// The labels take the values node_exporter derives from /proc/net/ip_vs: proto
// "TCP", "UDP" or "FWM"; a mark service has local_address "", local_port "0" and
// local_mark the mark as the kernel prints it there (eight upper-case hex digits,
// "0000000A" for mark 10); an address service has local_mark "". Series with the
// same labels are summed, as node_exporter does (docs/operations.md §2.1).
type nodeIPVSCollector struct {
	a  *Admin
	on *atomic.Bool
}

var (
	nodeIPVSBackendLabels = []string{"local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"}

	descNodeConns    = prometheus.NewDesc("node_ipvs_connections_total", "Connections the director scheduled, over all virtual services.", nil, nil)
	descNodeInPkts   = prometheus.NewDesc("node_ipvs_incoming_packets_total", "Packets the director received for virtual services.", nil, nil)
	descNodeOutPkts  = prometheus.NewDesc("node_ipvs_outgoing_packets_total", "Packets of virtual services the director sent back toward clients (NAT replies).", nil, nil)
	descNodeInBytes  = prometheus.NewDesc("node_ipvs_incoming_bytes_total", "Bytes of the packets counted by node_ipvs_incoming_packets_total.", nil, nil)
	descNodeOutBytes = prometheus.NewDesc("node_ipvs_outgoing_bytes_total", "Bytes of the packets counted by node_ipvs_outgoing_packets_total.", nil, nil)
	descNodeActive   = prometheus.NewDesc("node_ipvs_backend_connections_active", "Active connections of a real server of a virtual service.", nodeIPVSBackendLabels, nil)
	descNodeInactive = prometheus.NewDesc("node_ipvs_backend_connections_inactive", "Inactive connections of a real server of a virtual service.", nodeIPVSBackendLabels, nil)
	descNodeWeight   = prometheus.NewDesc("node_ipvs_backend_weight", "Scheduling weight of a real server of a virtual service.", nodeIPVSBackendLabels, nil)
)

func (c *nodeIPVSCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descNodeConns, descNodeInPkts, descNodeOutPkts, descNodeInBytes, descNodeOutBytes,
		descNodeActive, descNodeInactive, descNodeWeight,
	} {
		ch <- d
	}
}

// nodeIPVSBackend is the sum of the series sharing one set of labels.
type nodeIPVSBackend struct {
	labels                   [6]string
	active, inactive, weight float64
}

func (c *nodeIPVSCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.on.Load() {
		return
	}
	views := c.a.views()
	t := c.a.d.Totals()
	var conns, inPkts, outPkts, inBytes, outBytes uint64
	for _, s := range t.Services { // every service id ever used: ids are not reused
		conns += s.Conns
		inPkts += s.InPkts
		outPkts += s.OutPkts
		inBytes += s.InBytes
		outBytes += s.OutBytes
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(descNodeConns, conns)
	counter(descNodeInPkts, inPkts)
	counter(descNodeOutPkts, outPkts)
	counter(descNodeInBytes, inBytes)
	counter(descNodeOutBytes, outBytes)

	var order [][6]string
	sums := map[[6]string]*nodeIPVSBackend{}
	for i := range views {
		v := &views[i]
		local := nodeIPVSLocal(&v.Spec)
		for j := range v.Dests {
			dv := &v.Dests[j]
			l := [6]string{local[0], local[1], dv.Addr.Unmap().String(), strconv.Itoa(int(dv.Port)), local[2], local[3]}
			b := sums[l]
			if b == nil {
				b = &nodeIPVSBackend{labels: l}
				sums[l] = b
				order = append(order, l)
			}
			b.active += float64(dv.ActiveConns)
			b.inactive += float64(dv.InactConns)
			b.weight += float64(dv.Weight)
		}
	}
	for _, l := range order {
		b := sums[l]
		ch <- prometheus.MustNewConstMetric(descNodeActive, prometheus.GaugeValue, b.active, l[:]...)
		ch <- prometheus.MustNewConstMetric(descNodeInactive, prometheus.GaugeValue, b.inactive, l[:]...)
		ch <- prometheus.MustNewConstMetric(descNodeWeight, prometheus.GaugeValue, b.weight, l[:]...)
	}
}

// nodeIPVSLocal returns a service's local_address, local_port, proto and
// local_mark as node_exporter reads them from /proc/net/ip_vs.
func nodeIPVSLocal(s *ipvs.Service) [4]string {
	if s.FWMark != 0 {
		return [4]string{"", "0", "FWM", fmt.Sprintf("%08X", s.FWMark)}
	}
	return [4]string{s.Addr.Addr().Unmap().String(), strconv.Itoa(int(s.Addr.Port())), s.Protocol.String(), ""}
}
