package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// ErrAgentUnreachable is wrapped by every error of a request that got no
// answer from the agent: connection refused, reset, timed out, or closed
// before an answer. It is not used when the caller's context ended first.
var ErrAgentUnreachable = errors.New("agent unreachable")

// StatusError is the agent's answer to a request it refused: any status
// other than 2xx.
type StatusError struct {
	// Code is the HTTP status code, such as 400 or 404.
	Code int
	// Body is the answer's body with surrounding space trimmed; the agent
	// puts a one-line message there that names the bad field.
	Body string
}

// maxErrorText bounds the body quoted in Error, so that one refused request
// stays one line of a log or terminal.
const maxErrorText = 300

// Error gives the status and the agent's message on one line.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("agent answered %d %s", e.Code, http.StatusText(e.Code))
	body := strings.Join(strings.Fields(e.Body), " ")
	if len(body) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && !utf8.RuneStart(body[cut]) {
			cut--
		}
		body = body[:cut] + "..."
	}
	if body != "" {
		msg += ": " + body
	}
	return msg
}

// IsNotFound reports whether err is, or wraps, the agent's 404 answer:
// an unknown service ID, for example.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}
