package stream

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestKafkaLoggers(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	logger := zap.New(core)
	KafkaLogger(logger).Printf("joined group %s as member %s\n", "g", "m-1")
	KafkaErrorLogger(logger).Printf("failed to read partition %d: %v", 3, "EOF")

	entries := logs.AllUntimed()
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	if e := entries[0]; e.Level != zapcore.DebugLevel || e.Message != "joined group g as member m-1" {
		t.Errorf("info entry %v %q, want debug without trailing newline", e.Level, e.Message)
	}
	if e := entries[1]; e.Level != zapcore.WarnLevel || e.Message != "failed to read partition 3: EOF" {
		t.Errorf("error entry %v %q, want warn", e.Level, e.Message)
	}

	// Debug disabled: the message is not even formatted.
	quietCore, quietLogs := observer.New(zap.InfoLevel)
	KafkaLogger(zap.New(quietCore)).Printf("%s", "dropped")
	if quietLogs.Len() != 0 {
		t.Errorf("debug line logged at info level")
	}
}
