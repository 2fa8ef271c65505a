package stream

import (
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// KafkaLogger adapts logger for kafka-go's Logger fields (Writer.Logger,
// ReaderConfig.Logger, ConsumerGroupConfig.Logger). kafka-go logs every
// batch, join and commit there, so it goes to debug level.
func KafkaLogger(logger *zap.Logger) kafka.LoggerFunc {
	return func(format string, args ...any) {
		if ce := logger.Check(zap.DebugLevel, ""); ce != nil {
			ce.Message = kafkaMessage(format, args)
			ce.Write()
		}
	}
}

// KafkaErrorLogger adapts logger for kafka-go's ErrorLogger fields. kafka-go
// reports there what it then retries by itself (broker unreachable, leader
// moved), so it goes to warn level: the error that stops a component is
// returned to it and logged by the service at error level.
func KafkaErrorLogger(logger *zap.Logger) kafka.LoggerFunc {
	return func(format string, args ...any) {
		if ce := logger.Check(zap.WarnLevel, ""); ce != nil {
			ce.Message = kafkaMessage(format, args)
			ce.Write()
		}
	}
}

func kafkaMessage(format string, args []any) string {
	return strings.TrimSpace(fmt.Sprintf(format, args...))
}
