// Package ipvsadm translates an ipvsadm-save dump (or a shell script of ipvsadm
// commands) into a gvs configuration. It reads the dump with internal/ipvsadm's
// restore parser and applies it with internal/ipvsadm.Edit, the edit semantics gvs
// adm uses, so a dump means here what `ipvsadm -R` (and `gvs adm -R`) makes of it.
// The result is an importer.Doc, written and proved by importer.Doc.Finish.
package ipvsadm
