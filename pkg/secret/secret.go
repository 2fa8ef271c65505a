// Package secret holds a string that never prints: String, GoString, and
// the JSON and YAML encodings show "***" (or "" when unset), so a
// configuration can be logged or dumped without leaking a password.
package secret

import "fmt"

// String is a secret value. Convert it with string(s) where the value is
// really needed.
type String string

const redacted = "***"

func (s String) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s String) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalJSON redacts the value.
func (s String) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf("%q", s.String())), nil }

// MarshalYAML redacts the value.
func (s String) MarshalYAML() (any, error) { return s.String(), nil }
