package main

import (
	"context"
	"fmt"

	"github.com/replyrocket/replyrocket/internal/cli"
	"github.com/replyrocket/replyrocket/internal/migrate"
)

func (e env) migrate(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: migrate needs one of up, down, status, redo", cli.ErrUsage)
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	if cfg.DB.URL == "" {
		return fmt.Errorf("DATABASE_URL is not set")
	}
	m, err := migrate.Open(cfg.DB.URL)
	if err != nil {
		return err
	}
	defer m.Close()
	switch args[0] {
	case "up":
		res, err := m.Up(ctx)
		for _, r := range res {
			fmt.Fprintf(e.stdout, "applied %s (%s)\n", r.Source.Path, r.Duration)
		}
		if err == nil && len(res) == 0 {
			fmt.Fprintln(e.stdout, "no pending migrations")
		}
		return err
	case "down":
		r, err := m.Down(ctx)
		if r != nil {
			fmt.Fprintf(e.stdout, "rolled back %s (%s)\n", r.Source.Path, r.Duration)
		}
		return err
	case "redo":
		if err := m.Redo(ctx); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "rolled back and re-applied the newest migration")
		return nil
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			applied := "pending"
			if !s.AppliedAt.IsZero() {
				applied = "applied " + s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(e.stdout, "%-40s %s\n", s.Source.Path, applied)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown migrate command %q", cli.ErrUsage, args[0])
}
