package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/caarlos0/env/v11"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/migration"
	"github.com/wameter/wameter/pkg/ops"
	"github.com/wameter/wameter/pkg/sink"
	"github.com/wameter/wameter/schemas"
	"github.com/wameter/wameter/services/wameter/internal/app"
)

// roleCommand runs the given pipeline roles until a signal.
func roleCommand(roles ...string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := flag.NewFlagSet(roles[0], flag.ContinueOnError)
		fs.SetOutput(stderr)
		validate := fs.Bool("validate", false, "check the configuration and data files, then exit")
		pidfile := fs.String("pidfile", "", "write the process id to `FILE` (removed at exit)")
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		if *pidfile != "" {
			remove, err := ops.WritePidfile(*pidfile)
			if err != nil {
				return err
			}
			defer remove()
		}
		cfg, err := app.LoadConfig(env.ToMap(os.Environ()))
		if err != nil {
			return err
		}
		if *validate {
			if err := cfg.Validate(); err != nil {
				return err
			}
			if _, _, err := app.LoadData(&cfg); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "configuration ok")
			return nil
		}
		logger, err := zap.NewProduction()
		if err != nil {
			return err
		}
		defer logger.Sync() //nolint:errcheck // best effort at exit
		return app.Run(ctx, cfg, roles, migrate, logger)
	}
}

// migrate applies the embedded schemas to cfg.Database, creating it.
// Instances that start together race to apply the same files: the loser
// fails on an object the winner created but has not recorded yet, so a
// failure is retried for a while (a file that really cannot apply fails
// every time and is returned).
func migrate(ctx context.Context, cfg sink.Config, logger *zap.Logger) error {
	opts, err := cfg.Options()
	if err != nil {
		return err
	}
	var applied []string
	for attempt := 1; ; attempt++ {
		applied, err = migration.Apply(ctx, opts, cfg.Database, schemas.FS, logger)
		if err == nil {
			break
		}
		if refusedCredentials(err) {
			// Waiting does not fix a wrong user or password: say so now.
			return fmt.Errorf("ClickHouse refused user %q: check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD or CLICKHOUSE_PASSWORD_FILE: %w", opts.Auth.Username, err)
		}
		if attempt == 40 { // about two minutes: a ClickHouse restarting, or another instance applying
			return err
		}
		logger.Warn("schema apply failed; retrying (another instance may be applying)", zap.Error(err), zap.Int("attempt", attempt))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 3*time.Second)):
		}
	}
	logger.Info("schemas applied", zap.String("database", cfg.Database), zap.Strings("applied", applied))
	return nil
}

// authCodes are ClickHouse's errors for credentials it refuses.
var authCodes = map[int32]bool{
	192: true, // UNKNOWN_USER
	193: true, // WRONG_PASSWORD
	194: true, // REQUIRED_PASSWORD
	516: true, // AUTHENTICATION_FAILED (current releases)
}

func refusedCredentials(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && authCodes[ex.Code]
}

func migrateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := app.LoadConfig(env.ToMap(os.Environ()))
	if err != nil {
		return err
	}
	logger, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // best effort at exit
	return migrate(ctx, cfg.ClickHouse, logger)
}
