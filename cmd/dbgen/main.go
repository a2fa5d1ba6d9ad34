// Command dbgen writes the caching Querier decorator (db/dbcache) and the
// query metadata (db/dbmeta) from the sqlc queries and the generated db
// package. Run it after sqlc generate, from the module root.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/replyrocket/replyrocket/internal/dbgen"
)

func main() {
	cfg := dbgen.Config{OutPackage: "dbcache", MetaPackage: "dbmeta"}
	flag.StringVar(&cfg.Dir, "dir", ".", "module root")
	flag.StringVar(&cfg.QueriesDir, "queries", "queries", "sqlc query files, relative to -dir")
	flag.StringVar(&cfg.SchemaDir, "schema", "schema", "migrations, relative to -dir")
	flag.StringVar(&cfg.DBPackage, "db", "./db", "package pattern of the sqlc output")
	out := flag.String("out", "db/dbcache/dbcache.gen.go", "output file, relative to -dir")
	meta := flag.String("meta", "db/dbmeta/dbmeta.gen.go", "query metadata file, relative to -dir")
	readme := flag.String("readme", "docs/cache.md", "document whose scope-report section is kept current, relative to -dir (empty: none)")
	quiet := flag.Bool("quiet", false, "do not print the scope report")
	check := flag.Bool("check", false, "fail if the output file is not current instead of writing it")
	flag.Parse()
	if err := run(cfg, outputs{*out, *meta, *readme}, *check, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, "dbgen:", err)
		os.Exit(1)
	}
}

// outputs are the files run writes, relative to the module root.
type outputs struct {
	cache, meta, readme string
}

func run(cfg dbgen.Config, to outputs, check, quiet bool) error {
	if err := dbgen.StripAnnotationDocs(filepath.Join(cfg.Dir, cfg.DBPackage), check); err != nil {
		return err
	}
	gen, err := dbgen.GenerateAll(cfg)
	if err != nil {
		return err
	}
	files := map[string][]byte{filepath.Join(cfg.Dir, to.cache): gen.Cache, filepath.Join(cfg.Dir, to.meta): gen.Meta}
	if to.readme != "" {
		path := filepath.Join(cfg.Dir, to.readme)
		doc, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		updated, err := dbgen.ReplaceReport(string(doc), gen.Report)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		files[path] = []byte(updated)
	}
	if !quiet && !check {
		fmt.Print(gen.Report)
	}
	for path, want := range files {
		if check {
			cur, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read %s: %w", path, err)
			}
			if !bytes.Equal(cur, want) {
				return fmt.Errorf("%s is not current: run go run ./cmd/dbgen", path)
			}
			continue
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}
