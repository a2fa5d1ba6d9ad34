// Command dbgen writes the caching Querier decorator (db/dbcache) from the
// sqlc queries and the generated db package. Run it after sqlc generate,
// from the module root.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/replyrocket/replyrocket/internal/dbgen"
)

func main() {
	cfg := dbgen.Config{OutPackage: "dbcache"}
	flag.StringVar(&cfg.Dir, "dir", ".", "module root")
	flag.StringVar(&cfg.QueriesDir, "queries", "queries", "sqlc query files, relative to -dir")
	flag.StringVar(&cfg.SchemaDir, "schema", "schema", "migrations, relative to -dir")
	flag.StringVar(&cfg.DBPackage, "db", "./db", "package pattern of the sqlc output")
	out := flag.String("out", "db/dbcache/dbcache.gen.go", "output file, relative to -dir")
	check := flag.Bool("check", false, "fail if the output file is not current instead of writing it")
	flag.Parse()
	if err := run(cfg, *out, *check); err != nil {
		fmt.Fprintln(os.Stderr, "dbgen:", err)
		os.Exit(1)
	}
}

func run(cfg dbgen.Config, out string, check bool) error {
	src, err := dbgen.Generate(cfg)
	if err != nil {
		return err
	}
	path := out
	if cfg.Dir != "." {
		path = cfg.Dir + "/" + out
	}
	if check {
		cur, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if !bytes.Equal(cur, src) {
			return fmt.Errorf("%s is not current: run go run ./cmd/dbgen", path)
		}
		return nil
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
