// Package keepalived translates a keepalived.conf (with the files it includes)
// into a gvs configuration: global_defs, virtual_server in all its forms with
// real_server and checkers, vrrp_instance and vrrp_sync_group. It parses
// keepalived's grammar itself (lex.go), translates what gvs has an equivalent for
// (lvs.go, vrrp.go) into an importer.Doc, and lets importer.Doc.Finish write and
// prove the TOML. Everything it does not translate exactly becomes a note.
//
// Defaults: a key keepalived.conf leaves out is left out of the TOML too, so
// config's defaults apply; where keepalived's default differs from gvs's, the
// importer writes keepalived's value explicitly (see lvs.go), and
// config.DefaultCheck holds the checker defaults both share.
package keepalived
