package main

import (
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
)

// kfakeLogger bridges kfake's printf-style logger to zap. kfake logs every
// request at its info level, so that goes to zap's debug. The sugared
// logger checks the level before formatting, so a disabled level costs little.
type kfakeLogger struct{ s *zap.SugaredLogger }

func (l kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.s.Errorf(msg, args...)
	case kfake.LogLevelWarn:
		l.s.Warnf(msg, args...)
	default:
		l.s.Debugf(msg, args...)
	}
}
