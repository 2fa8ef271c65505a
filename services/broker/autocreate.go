package main

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// persistAutoCreatedTopics makes metadata requests that allow auto-creation
// create unknown topics through Cluster.CreateTopic.
//
// kfake's own AllowAutoTopicCreation creates the topic in memory but does
// not write topics.json, so after kill -9 the topic and every record
// produced to it are gone (a clean shutdown saves them). CreateTopic writes
// topics.json at once. kfake runs control functions in their own goroutine
// while its loop keeps serving admin calls, so calling CreateTopic from here
// does not deadlock; the metadata request then proceeds unhandled and sees
// the topic.
func persistAutoCreatedTopics(cluster *kfake.Cluster, logger *zap.Logger) {
	cluster.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		mreq, ok := req.(*kmsg.MetadataRequest)
		if !ok || !mreq.AllowAutoTopicCreation {
			return nil, nil, false
		}
		for _, rt := range mreq.Topics {
			if rt.Topic == nil || *rt.Topic == "" {
				continue // by id, or all topics: nothing to create
			}
			err := cluster.CreateTopic(*rt.Topic, -1, nil)
			switch {
			case err == nil:
				logger.Info("auto-created topic", zap.String("topic", *rt.Topic))
			case errors.Is(err, kerr.TopicAlreadyExists):
			default:
				// The metadata answer then reports the error for the topic.
				logger.Warn("auto-create topic", zap.String("topic", *rt.Topic), zap.Error(err))
			}
		}
		return nil, nil, false
	})
}
