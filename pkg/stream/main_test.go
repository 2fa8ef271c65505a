package stream

import (
	"testing"

	"github.com/wameter/wameter/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
