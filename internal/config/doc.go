// Package config reads gvs's TOML configuration file into an immutable, validated
// snapshot: the director's own addresses and kernel-style sysctls, the virtual
// services with their real servers and health checks, and the VRRP instances.
//
// The key names are a contract (docs/design.md "Config"); config.example.toml at the
// repository root documents every key and is parsed by this package's tests.
//
// Parse and Load either return a *Config in which every value has been checked and
// every default filled in, or an error listing every problem in the file at once,
// each as "file:line: field: message" (see Error and Errors). A Config is never
// modified after Parse returns, so it is safe to share between goroutines and to
// swap atomically on reload.
//
// Order is preserved: services and real servers appear in Config in file order,
// because the Director adds real servers one by one in that order, exactly as
// ipvsadm and keepalived do against the kernel (IPVS inserts each new real server
// at the head of its list; docs/ipvs-semantics.md §0).
//
// gvs has no netfilter to set firewall marks, so an fwmark service lists the
// packets that carry its mark as [[service.match]] rules (Service.Match).
//
// Error lines come from a small second scan of the file (lineIndex), because the
// TOML decoder does not expose key positions.
//
// Parsing costs time and memory linear in the size of the file, so that a reload
// cannot take the director down: a file beyond the limits (MaxFileSize, MaxDepth,
// MaxKeyLen, MaxTables) is refused with the first limit it breaks and its line,
// before it is decoded, and only the first thousand problems of a file are listed.
//
// The package does no I/O beyond reading the file in Load and keeps no global
// state; it is not on the packet path.
package config
