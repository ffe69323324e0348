// Package docs holds gvs's specification documents (*.md). Its only code is this
// test, which keeps the references to them honest: every "docs/<name>.md" cited in the
// repository's Go, Markdown, TOML and shell files must name a file in this directory,
// and every section it cites ("§5.2", "§12.1–12.11", "§2.6, §3") or section title
// (docs/lab.md "Rules every lab and test obeys") must be a heading of that file.
package docs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// refRE finds a reference to a document of this directory. The name may be
	// followed by sections or a quoted title, possibly on the next comment line.
	refRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])docs/([A-Za-z0-9_-]+\.md)`)
	// sectionsRE reads the sections that follow a reference: "§5.2", "§2–4",
	// "§12.1–12.11", "§2–§4", "§1.4, §2.6", "§5.5/§6.4", "(§3)".
	sectionsRE = regexp.MustCompile("^[`\"']?[\\s,(]*(§\\s?[0-9.]+(?:\\s*[–-]\\s*§?[0-9.]+)?(?:\\s*(?:,|/|and|&)\\s*§\\s?[0-9.]+(?:\\s*[–-]\\s*§?[0-9.]+)?)*)")
	numberRE   = regexp.MustCompile(`[0-9]+(?:\.[0-9]+)*`)
	// titleRE reads a quoted section title that follows a reference.
	titleRE = regexp.MustCompile("^`?\\s*,?\\s*\"([A-Z][^\"]*)\"")
	// headingRE reads a Markdown heading; its number, if any, is the section.
	headingRE = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*$`)
	sectionRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)*)\.?(?:\s|$)`)
	// commentRE is what a continuation line starts with.
	commentRE = regexp.MustCompile(`^\s*(?://+|#+)?\s*`)
	// legacyRE matches the names the documents had before they moved into the
	// repository; written so that this file does not match itself.
	legacyRE = regexp.MustCompile(`\b(?:SEMANTICS|IPVSADM_FORMAT|VRRP|LAB|DESIGN|CLUSTER|STYLE)` + `\.md\b`)
)

// doc is one document of this directory: its section numbers and heading titles.
type doc struct {
	sections map[string]bool
	titles   map[string]bool
}

func loadDocs(t *testing.T) map[string]*doc {
	t.Helper()
	names, err := filepath.Glob("*.md")
	if err != nil || len(names) == 0 {
		t.Fatalf("no documents in docs/: %v", err)
	}
	docs := map[string]*doc{}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		d := &doc{sections: map[string]bool{}, titles: map[string]bool{}}
		fence := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				fence = !fence
				continue
			}
			m := headingRE.FindStringSubmatch(line)
			if fence || m == nil {
				continue
			}
			heading := m[1]
			d.titles[normalize(heading)] = true
			if s := sectionRE.FindStringSubmatch(heading); s != nil {
				d.sections[s[1]] = true
				d.titles[normalize(heading[len(s[0]):])] = true
			}
		}
		docs[name] = d
	}
	return docs
}

func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

// sourceFiles returns the repository's files that may cite the documents.
func sourceFiles(t *testing.T) []string {
	t.Helper()
	root := ".."
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	var files []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "vendor" || e.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".toml", ".sh":
		default:
			if e.Name() != "Makefile" {
				return nil
			}
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestReferencesResolve checks every docs/<name>.md reference in the repository.
func TestReferencesResolve(t *testing.T) {
	docs := loadDocs(t)
	refs := 0
	for _, path := range sourceFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, line := range lines {
			for _, m := range refRE.FindAllStringSubmatchIndex(line, -1) {
				refs++
				name := line[m[2]:m[3]]
				where := fmt.Sprintf("%s:%d", filepath.ToSlash(path), i+1)
				d := docs[name]
				if d == nil {
					t.Errorf("%s: docs/%s does not exist", where, name)
					continue
				}
				// The reference may continue on the next (comment) line.
				rest := line[m[1]:]
				if i+1 < len(lines) {
					rest += " " + commentRE.ReplaceAllString(lines[i+1], "")
				}
				if s := sectionsRE.FindStringSubmatch(rest); s != nil {
					for _, n := range numberRE.FindAllString(s[1], -1) {
						if !d.sections[n] {
							t.Errorf("%s: docs/%s has no section %s", where, name, n)
						}
					}
				} else if s := titleRE.FindStringSubmatch(rest); s != nil {
					if !d.titles[normalize(s[1])] {
						t.Errorf("%s: docs/%s has no section titled %q", where, name, s[1])
					}
				}
			}
		}
	}
	if refs == 0 {
		t.Error("no references found: is the walk looking in the right place?")
	}
}

// TestNoLegacyNames checks that no file still cites a document by the name it had
// outside the repository (SEMANTICS and the like, in upper case with .md).
func TestNoLegacyNames(t *testing.T) {
	for _, path := range sourceFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := legacyRE.FindString(line); m != "" {
				t.Errorf("%s:%d: %s is not in the repository; cite the file under docs/", filepath.ToSlash(path), i+1, m)
			}
		}
	}
}
