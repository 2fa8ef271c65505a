package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/caarlos0/env/v11"
	"go.uber.org/zap"

	"github.com/wameter/wameter/services/wameter/internal/alert"
)

// alertCommand runs the spend alerting service until a signal.
func alertCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("alert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	validate := fs.Bool("validate", false, "check the configuration and the rules file, then exit")
	rulesFile := fs.String("rules", "", "rules YAML `FILE` (default $WAMETER_ALERT_RULES)")
	interval := fs.Duration("interval", 0, "time between evaluations (default $WAMETER_ALERT_INTERVAL or 1m)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, err := alert.LoadConfig(env.ToMap(os.Environ()))
	if err != nil {
		return err
	}
	if *rulesFile != "" {
		cfg.RulesFile = *rulesFile
	}
	if *interval != 0 {
		cfg.Interval = *interval
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	rules, err := alert.LoadRules(cfg.RulesFile)
	if err != nil {
		return err
	}
	if *validate {
		fmt.Fprintln(stdout, "configuration ok")
		return nil
	}
	logger, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // best effort at exit
	return alert.Run(ctx, cfg, rules, migrate, time.Now, logger)
}
