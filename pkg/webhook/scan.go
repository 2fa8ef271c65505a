package webhook

import (
	"encoding/binary"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is the deepest nesting accepted, the same as encoding/json's, so
// that this package and encoding/json agree on what is valid JSON.
const maxDepth = 10000

// scanner is a validating, allocation-free JSON reader over one body. The
// decoders walk the few keys they need and skip the rest with skipValue, so
// every byte of a body is checked whether or not it is used.
//
// encoding/json into structs costs about a microsecond per status (reflection,
// a string per field); this reader makes no allocation of its own, which is
// what lets a core decode several hundred thousand statuses a second. The
// differential fuzz test holds it to encoding/json's notion of validity and
// string decoding.
type scanner struct {
	buf   []byte
	pos   int
	depth int

	keyBuf []byte // decoded keys that held escapes or non-ASCII
	strBuf []byte // decoded string values that held escapes or non-ASCII
}

func (s *scanner) reset(body []byte) {
	s.buf = body
	s.pos = 0
	s.depth = 0
}

func (s *scanner) syntax(what string) error {
	return &Error{Reason: ReasonInvalidJSON, Msg: "invalid JSON at byte " + strconv.Itoa(s.pos) + ": " + what}
}

func (s *scanner) ws() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.buf) {
		return 0
	}
	return s.buf[s.pos]
}

// end checks that nothing but white space follows the top-level value.
func (s *scanner) end() error {
	s.ws()
	if s.pos != len(s.buf) {
		return s.syntax("data after the top-level value")
	}
	return nil
}

// enter consumes the '{' or '[' under pos.
func (s *scanner) enter() error {
	s.pos++
	s.depth++
	if s.depth > maxDepth {
		return s.syntax("nested too deeply")
	}
	return nil
}

// nextKey advances to the next member of the object being read, returning
// its decoded key, or ok=false after consuming the closing '}'. first must
// start true for each object. The key is valid until the next nextKey call.
func (s *scanner) nextKey(first *bool) (key []byte, ok bool, err error) {
	c := s.peek()
	if c == '}' {
		s.pos++
		s.depth--
		return nil, false, nil
	}
	if !*first {
		if c != ',' {
			return nil, false, s.syntax("expected ',' or '}' in object")
		}
		s.pos++
		c = s.peek()
	}
	*first = false
	if c != '"' {
		return nil, false, s.syntax("expected a string key")
	}
	raw, plain, err := s.readString()
	if err != nil {
		return nil, false, err
	}
	if !plain {
		s.keyBuf = appendUnquoted(s.keyBuf[:0], raw)
		raw = s.keyBuf
	}
	if s.peek() != ':' {
		return nil, false, s.syntax("expected ':' after object key")
	}
	s.pos++
	return raw, true, nil
}

// nextElem advances to the next element of the array being read, or returns
// false after consuming the closing ']'. first must start true for each array.
func (s *scanner) nextElem(first *bool) (bool, error) {
	c := s.peek()
	if c == ']' {
		s.pos++
		s.depth--
		return false, nil
	}
	if !*first {
		if c != ',' {
			return false, s.syntax("expected ',' or ']' in array")
		}
		s.pos++
	}
	*first = false
	return true, nil
}

// readString reads the string under pos and returns its raw content between
// the quotes. plain reports that it holds neither escapes nor non-ASCII bytes,
// so that raw is its decoded value; otherwise decode it with appendUnquoted.
func (s *scanner) readString() (raw []byte, plain bool, err error) {
	b := s.buf
	start := s.pos + 1
	plain = true
	i := start
	for {
		// Most of a payload is plain ASCII string content: skip it eight
		// bytes at a time, then one at a time up to the next special byte.
		for i+8 <= len(b) && !hasSpecialByte(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		if i >= len(b) {
			s.pos = len(b)
			return nil, false, s.syntax("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			s.pos = i + 1
			return b[start:i], plain, nil
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				s.pos = i
				return nil, false, s.syntax("unterminated string")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					s.pos = i
					return nil, false, s.syntax(`invalid \u escape`)
				}
				i += 4
			default:
				s.pos = i
				return nil, false, s.syntax("invalid escape in string")
			}
		case c < 0x20:
			s.pos = i
			return nil, false, s.syntax("control character in string")
		default: // c >= utf8.RuneSelf
			plain = false
		}
		i++
	}
}

// plainByte[c] is true for the bytes a string may hold as they are and
// that need no decoding: ASCII but '"', '\\' and control characters.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// hasSpecialByte reports whether any byte of the eight in w is not a
// plainByte: '"', '\\', below 0x20 or at least 0x80 (SWAR: each test sets the
// high bit of the bytes it matches).
func hasSpecialByte(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := w ^ (ones * '"')
	backslash := w ^ (ones * '\\')
	control := w - ones*0x20
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|control|w)&highs != 0
}

// stringValue reads the string under pos and returns its decoded value,
// valid until the next stringValue call.
func (s *scanner) stringValue() ([]byte, error) {
	raw, plain, err := s.readString()
	if err != nil || plain {
		return raw, err
	}
	s.strBuf = appendUnquoted(s.strBuf[:0], raw)
	return s.strBuf, nil
}

// readNumber reads the JSON number under pos and returns its text.
func (s *scanner) readNumber() ([]byte, error) {
	b := s.buf
	start, i := s.pos, s.pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		s.pos = i
		return nil, s.syntax("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			s.pos = i
			return nil, s.syntax("invalid number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			s.pos = i
			return nil, s.syntax("invalid number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.pos = i
	return b[start:i], nil
}

func (s *scanner) literal(word string) error {
	if len(s.buf)-s.pos < len(word) || string(s.buf[s.pos:s.pos+len(word)]) != word {
		return s.syntax("invalid literal")
	}
	s.pos += len(word)
	return nil
}

// null consumes a null under pos if there is one.
func (s *scanner) null() (bool, error) {
	if s.peek() != 'n' {
		return false, nil
	}
	return true, s.literal("null")
}

// skipValue reads and validates one value of any type.
func (s *scanner) skipValue() error {
	switch s.peek() {
	case '{':
		if err := s.enter(); err != nil {
			return err
		}
		first := true
		for {
			_, ok, err := s.nextKey(&first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := s.skipValue(); err != nil {
				return err
			}
		}
	case '[':
		if err := s.enter(); err != nil {
			return err
		}
		first := true
		for {
			ok, err := s.nextElem(&first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := s.skipValue(); err != nil {
				return err
			}
		}
	case '"':
		_, _, err := s.readString()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	case 0:
		if s.pos >= len(s.buf) {
			return s.syntax("unexpected end of input")
		}
		return s.syntax("unexpected character")
	default:
		_, err := s.readNumber()
		return err
	}
}

// valid reports whether body is one valid JSON value; on failure the error
// says where.
func valid(body []byte) error {
	var s scanner
	s.reset(body)
	if err := s.skipValue(); err != nil {
		return err
	}
	return s.end()
}

// appendUnquoted appends the decoded value of a validated raw string,
// exactly as encoding/json decodes it: a lone surrogate escape and each
// invalid UTF-8 byte become U+FFFD.
func appendUnquoted(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			i++
			switch raw[i] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(raw[i+1:])
				i += 5
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, hex4(raw[i+2:])); pair != utf8.RuneError {
							dst = utf8.AppendRune(dst, pair)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, raw[i])
			}
			i++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, raw[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// hex4 decodes four validated hex digits, or returns -1 if b is short or
// not hex (only possible for the second half of a surrogate pair).
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
