package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestStringNeverPrints(t *testing.T) {
	s := String("hunter2")
	b, _ := json.Marshal(struct{ P String }{s})
	y, _ := s.MarshalYAML()
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v %+v", s, s, s, s), string(b), fmt.Sprint(y)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret printed: %s", out)
		}
	}
	if string(s) != "hunter2" || String("").String() != "" {
		t.Error("the value itself must stay available, and unset must print empty")
	}
}
