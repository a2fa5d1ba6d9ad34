// Package doccheck reads the repository's Markdown documents (README.md,
// CONTRIBUTING.md, docs/**/*.md) so tests can hold them to the code: every
// relative link and anchor resolves, and what the documents name in code
// spans (routes, environment variables, packages, identifiers, tests)
// exists. It parses with goldmark, so links and spans inside fenced code
// blocks are not mistaken for references.
package doccheck

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"
)

// Doc is one Markdown document, as the checks need it.
type Doc struct {
	// Path is relative to the repository root, with slashes.
	Path string
	// Source is the document's bytes.
	Source []byte
	// Anchors are the heading anchors GitHub generates for it.
	Anchors map[string]bool
	// Links are the destinations of its links and images, with their line.
	Links []Ref
	// Spans are its inline code spans (not fenced blocks), with their line.
	Spans []Ref
}

// Ref is a link destination or a code span, and the line it is on.
type Ref struct {
	Text string
	Line int
}

// Files lists the documents the checks cover, relative to root: README.md,
// CONTRIBUTING.md and every .md file under docs/.
func Files(root string) ([]string, error) {
	out := []string{"README.md", "CONTRIBUTING.md"}
	for _, f := range out {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			return nil, fmt.Errorf("doccheck: %w", err)
		}
	}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("doccheck: walk docs: %w", err)
	}
	return out, nil
}

var md = goldmark.New(goldmark.WithExtensions(extension.GFM))

// Load reads and parses every file (relative to root).
func Load(root string, files []string) (map[string]*Doc, error) {
	docs := map[string]*Doc{}
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, fmt.Errorf("doccheck: %w", err)
		}
		docs[f] = Parse(f, src)
	}
	return docs, nil
}

// Parse reads one document's headings, links and code spans.
func Parse(name string, src []byte) *Doc {
	d := &Doc{Path: name, Source: src, Anchors: map[string]bool{}}
	seen := map[string]int{}
	root := md.Parser().Parse(text.NewReader(src))
	_ = ast.Walk(root, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			slug := Slug(plainText(n, src))
			// GitHub numbers repeated headings: x, x-1, x-2.
			if k := seen[slug]; k > 0 {
				d.Anchors[slug+"-"+strconv.Itoa(k)] = true
			} else {
				d.Anchors[slug] = true
			}
			seen[slug]++
		case *ast.Link:
			d.Links = append(d.Links, Ref{string(n.Destination), lineOf(n, src)})
		case *ast.Image:
			d.Links = append(d.Links, Ref{string(n.Destination), lineOf(n, src)})
		case *ast.CodeSpan:
			d.Spans = append(d.Spans, Ref{plainText(n, src), lineOf(n, src)})
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return d
}

// plainText is a node's text without its Markdown: what GitHub slugs.
func plainText(n ast.Node, src []byte) string {
	var b strings.Builder
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch c := c.(type) {
		case *ast.Text:
			b.Write(c.Segment.Value(src))
			if c.SoftLineBreak() {
				b.WriteByte(' ')
			}
		case *ast.String:
			b.Write(c.Value)
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// lineOf is the 1-based line of a node's first text (inline nodes have no
// position of their own in goldmark; their first text segment does).
func lineOf(n ast.Node, src []byte) int {
	for c := n; c != nil; c = c.Parent() {
		if t, ok := c.(*ast.Text); ok {
			return 1 + strings.Count(string(src[:t.Segment.Start]), "\n")
		}
		if c.Type() == ast.TypeBlock && c.Lines().Len() > 0 {
			return 1 + strings.Count(string(src[:c.Lines().At(0).Start]), "\n")
		}
		if fc := c.FirstChild(); fc != nil {
			if t, ok := fc.(*ast.Text); ok {
				return 1 + strings.Count(string(src[:t.Segment.Start]), "\n")
			}
		}
	}
	return 0
}

// Slug is GitHub's anchor for a heading's text: lower case; letters,
// digits, spaces, hyphens and underscores kept, everything else dropped;
// each space a hyphen.
func Slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// CheckLinks returns one error per relative link of docs that points at a
// file or directory that does not exist under root, or at an anchor its
// Markdown target does not have. Absolute URLs are not followed.
func CheckLinks(root string, docs map[string]*Doc) []error {
	var errs []error
	for _, name := range sortedKeys(docs) {
		d := docs[name]
		for _, l := range d.Links {
			if err := checkLink(root, d, l.Text, docs); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: link %q: %w", d.Path, l.Line, l.Text, err))
			}
		}
	}
	return errs
}

func checkLink(root string, from *Doc, dest string, docs map[string]*Doc) error {
	u, err := url.Parse(dest)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "" || u.Host != "" {
		return nil
	}
	target := from
	if u.Path != "" {
		if strings.HasPrefix(u.Path, "/") {
			return fmt.Errorf("root-relative links break outside GitHub; use a path relative to %s", from.Path)
		}
		rel := path.Clean(path.Join(path.Dir(from.Path), u.Path))
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("points outside the repository")
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
			return fmt.Errorf("no such file or directory %s", rel)
		}
		target = docs[rel]
		if target == nil && u.Fragment != "" && strings.HasSuffix(rel, ".md") {
			src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				return err
			}
			target = Parse(rel, src)
		}
	}
	if u.Fragment == "" || target == nil {
		return nil
	}
	if !target.Anchors[u.Fragment] {
		return fmt.Errorf("%s has no heading with anchor #%s", target.Path, u.Fragment)
	}
	return nil
}

// routePrefixes start the paths the HTTP API serves; a code span that
// starts with one is taken for a route.
var routePrefixes = []string{"/api/", "/db-monitor", "/health", "/metrics", "/openapi.json", "/docs", "/debug/pprof"}

// Routes returns the code spans of docs that name an HTTP path, with a
// leading method ("GET /x"), anything after the path (a body), the query
// string and the fragment removed.
func Routes(docs map[string]*Doc) []Mention {
	var out []Mention
	for _, d := range sortedDocs(docs) {
		for _, s := range d.Spans {
			p := s.Text
			if m, rest, ok := strings.Cut(p, " "); ok && m == strings.ToUpper(m) && strings.HasPrefix(rest, "/") {
				p = rest
			}
			if f := strings.Fields(p); len(f) > 0 {
				p = f[0]
			}
			p, _, _ = strings.Cut(p, "?")
			p, _, _ = strings.Cut(p, "#")
			for _, pre := range routePrefixes {
				if strings.HasPrefix(p, pre) {
					out = append(out, Mention{Doc: d.Path, Line: s.Line, Name: p})
					break
				}
			}
		}
	}
	return out
}

// Mention is a name a document uses, and where.
type Mention struct {
	Doc  string
	Line int
	Name string
}

func (m Mention) String() string { return fmt.Sprintf("%s:%d: %s", m.Doc, m.Line, m.Name) }

// envVar is a code span that is an environment variable, alone or
// assigned (`CACHE_DISABLED=true`).
var envVar = regexp.MustCompile(`^([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=\S*)?$`)

// EnvVars returns the environment variables docs name in code spans.
func EnvVars(docs map[string]*Doc) []Mention {
	return matching(docs, envVar, func(m []string) string { return m[1] })
}

// matching returns, for each code span of docs that re matches, the name
// that name makes of the submatches.
func matching(docs map[string]*Doc, re *regexp.Regexp, name func(submatches []string) string) []Mention {
	var out []Mention
	for _, d := range sortedDocs(docs) {
		for _, s := range d.Spans {
			if m := re.FindStringSubmatch(s.Text); m != nil {
				out = append(out, Mention{Doc: d.Path, Line: s.Line, Name: name(m)})
			}
		}
	}
	return out
}

// repoPath is a code span naming a directory or file of the repository.
var repoPath = regexp.MustCompile(`^(?:\./)?((?:cmd|db|handlers|internal|queries|schema|docs|\.ci)(?:/[A-Za-z0-9_.\-]+)*)/?$`)

// Paths returns the repository paths (packages, files) docs name in code
// spans, relative to the root.
func Paths(docs map[string]*Doc) []Mention {
	return matching(docs, repoPath, func(m []string) string { return m[1] })
}

// qualified is a code span naming a Go identifier of a package,
// `pkg.Name` or `pkg.Type.Method`, possibly called (`pkg.F(…)`).
var qualified = regexp.MustCompile(`^([a-z][a-z0-9]*)\.([A-Z][A-Za-z0-9_]*)(?:\.([A-Z][A-Za-z0-9_]*))?(?:\(.*\))?$`)

// Identifiers returns the qualified Go identifiers docs name, as
// "pkg.Name" or "pkg.Type.Method".
func Identifiers(docs map[string]*Doc) []Mention {
	return matching(docs, qualified, func(m []string) string {
		if m[3] != "" {
			return m[1] + "." + m[2] + "." + m[3]
		}
		return m[1] + "." + m[2]
	})
}

// testFunc is a code span naming a test, benchmark or fuzz target.
var testFunc = regexp.MustCompile(`^((?:Test|Benchmark|Fuzz)[A-Z][A-Za-z0-9_]*)$`)

// Tests returns the test, benchmark and fuzz functions docs name.
func Tests(docs map[string]*Doc) []Mention {
	return matching(docs, testFunc, func(m []string) string { return m[1] })
}

func sortedKeys(docs map[string]*Doc) []string {
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedDocs(docs map[string]*Doc) []*Doc {
	out := make([]*Doc, 0, len(docs))
	for _, k := range sortedKeys(docs) {
		out = append(out, docs[k])
	}
	return out
}
