// Package control is the control socket between `gvs adm` and a running director:
// a unix stream socket that only its owner can use (mode 0600; the director runs as
// root), carrying one JSON request and one JSON response per connection.
//
// The protocol is deliberately small and versioned. A Request holds an ipvsadm
// command line (without the program name) and, for -R, the text ipvsadm would read
// from standard input; the Response holds what ipvsadm would print on standard
// output and standard error and the status it would exit with. All of ipvsadm's
// syntax and semantics live on the director's side (package daemon's Admin), so the
// client is a pipe and old clients keep working as commands are added.
//
//	client                                  director (Serve)
//	connect(path) ─────────────────────────► accept, deadline Timeout
//	{"version":1,"args":["-Ln"]} EOF ──────► read at most MaxRequestSize bytes
//	                                          Handler.Handle(ctx, req)
//	◄──── {"version":1,"stdout":"…","stderr":"","status":0}, close
//
// A listing whose size follows the connection table's (`-L -c`, a StreamHandler's
// Streams) is streamed instead: the director announces it with a Response whose
// Stream is set, then writes standard output in length-prefixed chunks as it walks
// the table, then the Response with standard error and status (stream.go). Neither
// side holds more than a chunk, whatever the table's size, and at most MaxStreams
// run at once; one more is refused at once (ErrBusy's message).
//
// A request whose Version is not this package's Version is answered with an error
// Response, never executed. Serve refuses to start while another process listens on
// the path, replaces a stale socket file left by a crashed director, never exposes
// the socket with a looser mode than 0600 (it is created in a private directory and
// linked into place), and removes it on exit.
//
// Nothing here is on the packet path.
package control
