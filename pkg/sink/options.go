package sink

import "github.com/ClickHouse/clickhouse-go/v2"

// Options returns the clickhouse-go options cfg (defaults applied) stands
// for, for other users of the same server (the schema applier, queries).
func (c Config) Options() (*clickhouse.Options, error) {
	cfg := c.WithDefaults()
	return cfg.options()
}
