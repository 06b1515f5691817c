package scalers

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FieldError is a problem with one trigger parameter.
type FieldError struct {
	// Key is the metadata key (or TriggerAuthentication parameter) at fault.
	Key string
	// Msg says what is wrong, for a person.
	Msg string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Key, e.Msg) }

// Validator is implemented by metadata structs with rules across fields; Parse calls Validate after every
// field parsed cleanly.
type Validator interface {
	Validate() error
}

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

// Tag grammar: `ebb:"name[,optional][,secret][,default=V][,enum=a|b][,min=N][,max=N]"`.
type field struct {
	Param
	index []int
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	schemaCache     sync.Map // reflect.Type -> []field or error
)

func schemaOf(t reflect.Type) ([]field, error) {
	if v, ok := schemaCache.Load(t); ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v.([]field), nil
	}
	fields, err := buildSchema(t)
	if err != nil {
		schemaCache.Store(t, err)
		return nil, err
	}
	schemaCache.Store(t, fields)
	return fields, nil
}

func buildSchema(t reflect.Type) ([]field, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("scalers: metadata type %s is not a struct", t)
	}
	var fields []field
	seen := map[string]bool{}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("ebb")
		if !ok || tag == "-" {
			continue
		}
		parts := strings.Split(tag, ",")
		f := field{Param: Param{Name: strings.TrimSpace(parts[0]), Type: typeName(sf.Type)}, index: sf.Index}
		if f.Name == "" {
			return nil, fmt.Errorf("scalers: %s.%s: empty name in ebb tag", t, sf.Name)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("scalers: %s: key %q declared twice", t, f.Name)
		}
		seen[f.Name] = true
		for _, opt := range parts[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(opt), "=")
			switch k {
			case "optional":
				f.Optional = true
			case "secret":
				f.Secret = true
			case "default":
				f.Default = v
			case "enum":
				f.Enum = strings.Split(v, "|")
			case "min":
				f.Min = v
			case "max":
				f.Max = v
			default:
				return nil, fmt.Errorf("scalers: %s.%s: unknown ebb tag option %q", t, sf.Name, k)
			}
		}
		if !settable(sf.Type) {
			return nil, fmt.Errorf("scalers: %s.%s: unsupported field type %s", t, sf.Name, sf.Type)
		}
		// Bounds and defaults must themselves parse, or every trigger of this type would misbehave.
		for _, b := range []struct{ opt, v string }{{"min", f.Min}, {"max", f.Max}} {
			if b.v == "" {
				continue
			}
			if _, err := parseBound(sf.Type, b.v); err != nil {
				return nil, fmt.Errorf("scalers: %s.%s: %s %q: %w", t, sf.Name, b.opt, b.v, err)
			}
		}
		if f.Default != "" {
			if err := setValue(reflect.New(sf.Type).Elem(), f.Default); err != nil {
				return nil, fmt.Errorf("scalers: %s.%s: default %q: %w", t, sf.Name, f.Default, err)
			}
		}
		fields = append(fields, f)
	}
	return fields, nil
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case reflect.PointerTo(t).Implements(unmarshalerType):
		return "string"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem())
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64, t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		return "integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "number"
	}
	return t.Kind().String()
}

func settable(t reflect.Type) bool {
	if t == durationType || reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Slice && settable(t.Elem())
	}
	return false
}

func setValue(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("must be a duration such as 30s or 5m, got %q", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be an integer, got %q", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be a non-negative integer, got %q", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be a number, got %q", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		out := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			if err := setValue(out.Index(i), item); err != nil {
				return fmt.Errorf("item %d: %w", i+1, err)
			}
		}
		v.Set(out)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// checkRange compares a parsed number with the tag's min and max.
func checkRange(v reflect.Value, f field) error {
	var x float64
	switch {
	case v.Type() == durationType:
		x = float64(v.Int())
	case v.CanInt():
		x = float64(v.Int())
	case v.CanUint():
		x = float64(v.Uint())
	case v.CanFloat():
		x = v.Float()
	default:
		return nil
	}
	// Bounds were checked by buildSchema.
	bound := func(s string) float64 { b, _ := parseBound(v.Type(), s); return b }
	if f.Min != "" && x < bound(f.Min) {
		return fmt.Errorf("must be at least %s", f.Min)
	}
	if f.Max != "" && x > bound(f.Max) {
		return fmt.Errorf("must be at most %s", f.Max)
	}
	return nil
}

// parseBound parses a min or max tag option for a field of type t.
func parseBound(t reflect.Type, s string) (float64, error) {
	if t == durationType {
		d, err := time.ParseDuration(s)
		return float64(d), err
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return strconv.ParseFloat(s, 64)
	}
	return 0, fmt.Errorf("min and max apply to numbers and durations, not %s", t)
}

// Parse fills out, a pointer to a tagged struct, from a trigger's metadata and the parameters its
// TriggerAuthentication resolved. Every problem is returned, joined, as *FieldError values; rules across
// fields (Validate) run only when every field parsed.
func Parse(metadata, auth map[string]string, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("scalers: Parse needs a non-nil pointer to a struct, got %T", out)
	}
	rv = rv.Elem()
	fields, err := schemaOf(rv.Type())
	if err != nil {
		return err
	}
	var errs []error
	known := make(map[string]field, len(fields))
	for _, f := range fields {
		known[f.Name] = f
	}
	for _, k := range sortedKeys(metadata) {
		f, ok := known[k]
		switch {
		case !ok:
			errs = append(errs, &FieldError{Key: k, Msg: unknownKeyMsg(k, fields)})
		case f.Secret:
			errs = append(errs, &FieldError{Key: k, Msg: "is a secret: set it through a TriggerAuthentication (authenticationRef), not in metadata"})
		}
	}
	for _, k := range sortedKeys(auth) {
		if _, ok := known[k]; !ok {
			errs = append(errs, &FieldError{Key: k, Msg: "TriggerAuthentication sets a parameter this trigger type does not have" + didYouMean(k, fields)})
		}
	}
	for _, f := range fields {
		raw, ok := auth[f.Name]
		if !ok && !f.Secret {
			raw, ok = metadata[f.Name]
		}
		if ok && strings.TrimSpace(raw) == "" {
			ok = false
		}
		if !ok {
			if f.Default == "" {
				if !f.Optional {
					msg := "is required"
					if f.Secret {
						msg = "is required, from a TriggerAuthentication"
					}
					errs = append(errs, &FieldError{Key: f.Name, Msg: msg})
				}
				continue
			}
			raw = f.Default
		}
		raw = strings.TrimSpace(raw)
		if len(f.Enum) > 0 && !slices.Contains(f.Enum, raw) {
			errs = append(errs, &FieldError{Key: f.Name, Msg: fmt.Sprintf("must be one of %s, got %q", strings.Join(f.Enum, ", "), raw)})
			continue
		}
		v := rv.FieldByIndex(f.index)
		if err := setValue(v, raw); err != nil {
			errs = append(errs, &FieldError{Key: f.Name, Msg: err.Error()})
			continue
		}
		if err := checkRange(v, f); err != nil {
			errs = append(errs, &FieldError{Key: f.Name, Msg: err.Error()})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if val, ok := out.(Validator); ok {
		return val.Validate()
	}
	return nil
}

// Describe lists the parameters a tagged metadata struct accepts, in declaration order.
func Describe(metadata any) ([]Param, error) {
	t := reflect.TypeOf(metadata)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields, err := schemaOf(t)
	if err != nil {
		return nil, err
	}
	params := make([]Param, len(fields))
	for i, f := range fields {
		params[i] = f.Param
	}
	return params, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func unknownKeyMsg(k string, fields []field) string {
	if hint := didYouMean(k, fields); hint != "" {
		return "unknown key" + hint
	}
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		if !f.Secret {
			names = append(names, f.Name)
		}
	}
	slices.Sort(names)
	return "unknown key; known keys: " + strings.Join(names, ", ")
}

// didYouMean suggests the known key closest to k, when it is a likely typo (case, or two edits).
func didYouMean(k string, fields []field) string {
	best, bestD := "", 3
	for _, f := range fields {
		if strings.EqualFold(f.Name, k) {
			return fmt.Sprintf(" (did you mean %q?)", f.Name)
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(f.Name)); d < bestD {
			best, bestD = f.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// OnlyKeys checks that metadata and auth use no key outside allowed, for a use of a trigger type's
// parameters that takes only some of them (a dead-letter reader takes the connection keys and the queue,
// not the scaling ones). Each other key is a FieldError that says what the keys are for.
func OnlyKeys(metadata, auth map[string]string, what string, allowed ...string) error {
	var errs []error
	for _, src := range []map[string]string{metadata, auth} {
		for _, k := range sortedKeys(src) {
			if !slices.Contains(allowed, k) {
				errs = append(errs, &FieldError{Key: k, Msg: fmt.Sprintf("not a key of %s; it takes %s", what, strings.Join(allowed, ", "))})
			}
		}
	}
	return errors.Join(errs...)
}
