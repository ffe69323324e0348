// Package plot draws line charts as self-contained SVG: no scripts, fonts, style
// sheets or images from elsewhere, so a file opens the same in any browser on a
// machine with no network. It serves gvs bench replay --plot.
//
// A Chart is a set of named series over a common x axis; Write stacks charts in
// one SVG document, each with its axes, ticks and a legend. Every series is one
// <polyline> carrying its name in data-series, so tools (and tests) can read a
// plot back. Nothing here is on the packet path.
package plot
