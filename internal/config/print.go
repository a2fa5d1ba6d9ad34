package config

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
)

// Print writes every variable with its default under the current APP_ENV
// and its current value, secrets masked: what `replyrocket config` shows.
func Print(w io.Writer, getenv func(string) string) error {
	appEnv := getenv("APP_ENV")
	if appEnv == "" {
		appEnv = "dev"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VARIABLE\tDEFAULT (APP_ENV=%s)\tCURRENT\tMEANING\n", appEnv)
	for _, v := range Variables() {
		cur := "(default)"
		if s := getenv(v.Name); s != "" {
			cur = Mask(v, s)
		}
		def := v.Default(appEnv)
		if def == "" {
			def = "–"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, def, cur, v.Help)
	}
	return tw.Flush()
}

// Mask hides a secret's value: a key entirely, a URL's password only.
func Mask(v Variable, s string) string {
	switch v.Secret {
	case "passwords":
		parts := strings.Split(s, ",")
		for i, p := range parts {
			parts[i] = Mask(Variable{Secret: "password"}, strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	case "true":
		return "****** (set)"
	case "password":
		u, err := url.Parse(s)
		if err != nil {
			// Not a URL (a libpq key=value string, say): it may hold a
			// password anywhere, so nothing of it is shown.
			return "****** (set)"
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.Redacted()
	}
	return s
}

// Markdown is the documentation table of one section: every variable with
// its defaults (dev, and prod where it differs) and meaning.
func Markdown(section string) string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Meaning |\n|---|---|---|\n")
	for _, v := range Variables() {
		if v.Section != section {
			continue
		}
		def := "unset"
		if v.DevDefault != "" {
			def = "`" + v.DevDefault + "`"
		}
		if v.ProdDefault != "" && v.ProdDefault != v.DevDefault {
			def += " (prod: `" + v.ProdDefault + "`)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, strings.ReplaceAll(v.Help, "|", `\|`))
	}
	return b.String()
}

// Sections are the documentation tables, in the order of the struct.
func Sections() []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range Variables() {
		if !seen[v.Section] {
			seen[v.Section] = true
			out = append(out, v.Section)
		}
	}
	return out
}

// UpdateDocs replaces, in the documents (name → text), the text between
// each section's markers
//
//	<!-- config:NAME begin (generated from internal/config: go test ./internal/config -update) -->
//	<!-- config:NAME end -->
//
// with that section's table, and returns the documents. Each section's
// table lives with its topic (the cache's in docs/cache.md, …): its markers
// must be in exactly one document.
func UpdateDocs(docs map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(docs))
	for name, text := range docs {
		out[name] = text
	}
	for _, s := range Sections() {
		begin := "<!-- config:" + s + " begin"
		end := "<!-- config:" + s + " end -->"
		var in []string
		for name, text := range out {
			i := strings.Index(text, begin)
			if i < 0 {
				continue
			}
			in = append(in, name)
			j := strings.Index(text, end)
			nl := strings.Index(text[i:], "\n")
			if j < i || nl < 0 {
				return nil, fmt.Errorf("%s: %q without %q after it", name, begin, end)
			}
			start := i + nl + 1
			out[name] = text[:start] + Markdown(s) + text[j:]
		}
		if len(in) != 1 {
			return nil, fmt.Errorf("the %s table's markers (%q … %q) are in %d documents %v, want exactly one", s, begin, end, len(in), in)
		}
	}
	return out, nil
}
