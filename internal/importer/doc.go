// Package importer holds what gvs's translators from other tools' configurations
// share (internal/importer/keepalived for keepalived.conf, internal/importer/ipvsadm
// for ipvsadm-save dumps): the Doc they build — gvs's configuration with where each
// part came from and what could not be translated — and Finish, which writes it as
// gvs TOML and proves the result with config.Parse.
//
// The TOML is marshalled by github.com/BurntSushi/toml from values shaped as the
// config file (struct tags with config's key names); the writer only adds what an
// encoder cannot: a comment header with the notes, a comment naming each block's
// source, and blocks gvs would refuse written commented out, each with a note
// saying why. Whatever Finish returns, config.Parse accepts.
//
// Nothing here is on the packet path or keeps global state.
package importer
