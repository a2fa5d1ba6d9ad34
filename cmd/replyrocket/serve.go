package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/replyrocket/replyrocket/internal/app"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/logbuf"
	"github.com/replyrocket/replyrocket/internal/migrate"
)

func (e env) config() (config.Config, error) {
	cfg, err := config.Load(e.getenv)
	if err != nil {
		return config.Config{}, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

func (e env) serve(ctx context.Context, args []string) error {
	var doMigrate bool
	if err := e.flags("serve", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&doMigrate, "migrate", false, "apply pending migrations before serving")
	}); err != nil {
		return err
	}
	cfg, err := e.config()
	if err != nil {
		return err
	}
	if cfg.DB.URL == "" {
		return fmt.Errorf("DATABASE_URL is not set (use `replyrocket dev` for a local database)")
	}
	if doMigrate {
		if err := migrate.Up(ctx, cfg.DB.URL); err != nil {
			return err
		}
	}
	return e.runServer(ctx, cfg)
}

// runServer starts the app on cfg.Server.Port and serves until ctx is done.
func (e env) runServer(ctx context.Context, cfg config.Config) error {
	log, closeLog := e.serverLogger(cfg)
	defer closeLog()
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Server.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.Server.Port, err)
	}
	return a.Serve(ctx, ln)
}

// serverLogger is a serving process's logger, on a buffered stderr; the
// returned func writes out what is left.
func (e env) serverLogger(cfg config.Config) (*slog.Logger, func()) {
	return logbuf.ServerLogger(e.stderr, cfg.Logger)
}
