package scalers

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// FieldError is a problem with one trigger parameter.
type FieldError struct {
	// Key is the metadata key (or TriggerAuthentication parameter) at fault.
	Key string
	// Msg says what is wrong, for a person. A rule across keys may write a sentence that starts with the
	// key ("mode is MessageRate but value is not set"); it is then shown as it is, not after "key: ".
	Msg string
	// KeyFirst writes "key: " before Msg even when Msg starts with the key, for a message that names the
	// key as part of a pair ("cert and key: ...") rather than as the subject of a sentence.
	KeyFirst bool
}

func (e *FieldError) Error() string {
	if !e.KeyFirst && strings.HasPrefix(e.Msg, e.Key+" ") {
		return e.Msg
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Msg)
}

// Validator is implemented by metadata structs with rules across fields; Parse calls Validate after every
// field parsed cleanly. Return each problem as a *FieldError on the key to change (joined with
// errors.Join), so every message names its key.
type Validator interface {
	Validate() error
}

var validatorType = reflect.TypeFor[Validator]()

// Param describes one trigger parameter, as declared by its struct tag. Docs are generated from it.
type Param struct {
	Name     string
	Type     string
	Default  string
	Enum     []string
	Min, Max string
	Optional bool
	// Secret parameters come from a TriggerAuthentication only, never from metadata.
	Secret bool
}

// Parse fills out, a pointer to a tagged struct, from a trigger's metadata and the parameters its
// TriggerAuthentication resolved. Every problem is returned, joined, as *FieldError values. Rules across
// fields run only when every field parsed: first the Validate of each embedded struct (innermost first),
// then out's own; a rule that out merely inherits from an embedded struct is reported once.
func Parse(metadata, auth map[string]string, out any) error {
	return parse(metadata, auth, out, "")
}

// ParseAs is Parse for a use of a trigger type that takes only some of its keys, such as a dead-letter
// reader, which takes how to reach the broker and the queue but none of the scaling keys: out declares the
// keys it takes, and any other key is reported as not a key of what ("a kafka dead-letter topic"), with
// the list of the keys it takes, rather than as a likely typo.
func ParseAs(what string, metadata, auth map[string]string, out any) error {
	return parse(metadata, auth, out, what)
}

func parse(metadata, auth map[string]string, out any, what string) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("scalers: Parse needs a non-nil pointer to a struct, got %T", out)
	}
	rv = rv.Elem()
	s, err := schemaOf(rv.Type())
	if err != nil {
		return err
	}
	errs := unknownKeys(metadata, auth, s.fields, what)
	for _, f := range s.fields {
		if err := setField(rv, f, metadata, auth); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return validate(rv, s.parts)
}

// unknownKeys reports the keys of metadata and auth that fields do not declare, and secrets in metadata.
func unknownKeys(metadata, auth map[string]string, fields []field, what string) []error {
	var errs []error
	known := make(map[string]field, len(fields))
	for _, f := range fields {
		known[f.Name] = f
	}
	for _, k := range sortedKeys(metadata) {
		f, ok := known[k]
		switch {
		case !ok && what != "":
			errs = append(errs, &FieldError{Key: k, Msg: notAKeyOf(what, fields)})
		case !ok:
			errs = append(errs, &FieldError{Key: k, Msg: unknownKeyMsg(k, fields)})
		case f.Secret:
			errs = append(errs, &FieldError{Key: k, Msg: "is a secret: set it through a TriggerAuthentication (authenticationRef), not in metadata"})
		}
	}
	for _, k := range sortedKeys(auth) {
		if _, ok := known[k]; ok {
			continue
		}
		if what != "" {
			errs = append(errs, &FieldError{Key: k, Msg: notAKeyOf(what, fields)})
			continue
		}
		errs = append(errs, &FieldError{Key: k, Msg: "TriggerAuthentication sets a parameter this trigger type does not have" + didYouMean(k, fields)})
	}
	return errs
}

// setField parses f's value (from auth, else metadata, else its default) into rv.
func setField(rv reflect.Value, f field, metadata, auth map[string]string) error {
	raw, ok := auth[f.Name]
	if !ok && !f.Secret {
		raw, ok = metadata[f.Name]
	}
	if ok && strings.TrimSpace(raw) == "" {
		ok = false
	}
	if !ok {
		if f.Default == "" {
			if f.Optional {
				return nil
			}
			if f.Secret {
				return &FieldError{Key: f.Name, Msg: "is required, from a TriggerAuthentication"}
			}
			return &FieldError{Key: f.Name, Msg: "is required"}
		}
		raw = f.Default
	}
	raw = strings.TrimSpace(raw)
	if len(f.Enum) > 0 && !slices.Contains(f.Enum, raw) {
		return &FieldError{Key: f.Name, Msg: fmt.Sprintf("must be one of %s, got %q", strings.Join(f.Enum, ", "), raw)}
	}
	v := rv.FieldByIndex(f.index)
	if err := setValue(v, raw); err != nil {
		return &FieldError{Key: f.Name, Msg: err.Error()}
	}
	if err := checkRange(v, f); err != nil {
		return &FieldError{Key: f.Name, Msg: err.Error()}
	}
	return nil
}

// validate runs the rules of the embedded structs at parts, then rv's own, and joins their problems,
// each once.
func validate(rv reflect.Value, parts [][]int) error {
	var validators []Validator
	for _, p := range parts {
		validators = append(validators, rv.FieldByIndex(p).Addr().Interface().(Validator))
	}
	if v, ok := rv.Addr().Interface().(Validator); ok {
		validators = append(validators, v)
	}
	var errs []error
	seen := map[string]bool{}
	for _, v := range validators {
		err := v.Validate()
		if err == nil {
			continue
		}
		list := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		}
		for _, e := range list {
			if !seen[e.Error()] {
				seen[e.Error()] = true
				errs = append(errs, e)
			}
		}
	}
	return errors.Join(errs...)
}

// Describe lists the parameters a tagged metadata struct accepts, in declaration order (an embedded
// struct's in its place).
func Describe(metadata any) ([]Param, error) {
	t := reflect.TypeOf(metadata)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s, err := schemaOf(t)
	if err != nil {
		return nil, err
	}
	params := make([]Param, len(s.fields))
	for i, f := range s.fields {
		params[i] = f.Param
	}
	return params, nil
}

// Keys lists the keys a tagged metadata struct accepts, in declaration order; it panics on a struct whose
// tags do not parse (a programming error that Describe reports).
func Keys(metadata any) []string {
	params, err := Describe(metadata)
	if err != nil {
		panic(err)
	}
	keys := make([]string, len(params))
	for i, p := range params {
		keys[i] = p.Name
	}
	return keys
}
