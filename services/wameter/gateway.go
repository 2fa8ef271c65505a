package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/ops"
	"github.com/wameter/wameter/services/wameter/internal/gateway"
)

// gatewayCommand serves Meta's webhook endpoint and writes each signed body
// to the webhooks topic, until a signal.
func gatewayCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	validate := fs.Bool("validate", false, "check the configuration and read the secrets, then exit")
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
	cfg, err := gateway.LoadConfig(env.ToMap(os.Environ()))
	if err != nil {
		return err
	}
	if *validate {
		if err := cfg.Validate(); err != nil {
			return err
		}
		if _, err := cfg.LoadSecrets(); err != nil {
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return gateway.Run(ctx, cfg, logger, reg)
}
