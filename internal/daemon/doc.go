// Package daemon wires the Director to its configuration, links, health checks, VRRP
// and the control socket. This file set turns a validated config into the Director's
// own types, so the data path never imports the config package.
package daemon
