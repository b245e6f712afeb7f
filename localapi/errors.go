package localapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/shoal-sd/shoal/catalog"
)

// ErrNotFound is returned by a Backend for an unknown local service or
// check.
var ErrNotFound = errors.New("not found")

// ErrNotKept is wrapped by a Backend's error for a write it refused
// because it could not save it (a full disk): nothing changed. The answer
// is a 500; the Backend logs such failures itself, at a bounded rate, so
// the handler does not log each one.
var ErrNotKept = errors.New("not saved to the data dir")

// writeError turns the error of a Backend write into the answer: a
// *catalog.FieldError is the client's mistake, a 400 naming the field;
// ErrNotFound answers notFound, if given; an *httpError answers itself;
// anything else is the agent's failure, a 500 that says what failed
// (format and args).
func writeError(err, notFound error, format string, args ...any) error {
	if he, ok := errors.AsType[*httpError](err); ok {
		return he
	}
	if fe, ok := errors.AsType[*catalog.FieldError](err); ok {
		return errorf(http.StatusBadRequest, "%s", fe.Error())
	}
	if notFound != nil && errors.Is(err, ErrNotFound) {
		return notFound
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// paramError names the query parameter that carried a field the Backend
// refused: Consul's clients send a TTL check's output as ?note and a
// maintenance reason as ?reason, which the Backend checks as Output and
// Notes.
func paramError(err error, field, param string) error {
	if fe, ok := errors.AsType[*catalog.FieldError](err); ok && fe.Field == field {
		return errorf(http.StatusBadRequest, "%s: %s", param, fe.Msg)
	}
	return err
}
