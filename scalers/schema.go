package scalers

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Tag grammar: `ebb:"name[,optional][,secret][,default=V][,enum=a|b][,min=N][,max=N]"`.
type field struct {
	Param
	index []int
}

// schema is what a tagged struct declares: its keys, in declaration order (an embedded struct's keys in its
// place), and the embedded structs whose rules (Validate) run after parsing, innermost first.
type schema struct {
	fields []field
	parts  [][]int
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	schemaCache     sync.Map // reflect.Type -> *schema or error
)

func schemaOf(t reflect.Type) (*schema, error) {
	if v, ok := schemaCache.Load(t); ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v.(*schema), nil
	}
	s, err := buildSchema(t)
	if err != nil {
		schemaCache.Store(t, err)
		return nil, err
	}
	schemaCache.Store(t, s)
	return s, nil
}

func buildSchema(t reflect.Type) (*schema, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("scalers: metadata type %s is not a struct", t)
	}
	s := &schema{}
	if err := s.collect(t, t, nil, map[string]bool{}); err != nil {
		return nil, err
	}
	return s, nil
}

// collect adds the keys of t, a struct at index within root. An embedded struct without an ebb tag
// contributes its keys, so connection settings shared by several trigger types (TLS, Credentials) are
// declared once; it must be exported when it has rules of its own (Validate), since the parser calls them.
func (s *schema) collect(root, t reflect.Type, index []int, seen map[string]bool) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, tagged := sf.Tag.Lookup("ebb")
		if tag == "-" {
			continue
		}
		at := append(slices.Clone(index), i)
		if sf.Anonymous && !tagged {
			if sf.Type.Kind() != reflect.Struct {
				return fmt.Errorf("scalers: %s.%s: an embedded field must be a struct (not a pointer)", root, sf.Name)
			}
			if err := s.collect(root, sf.Type, at, seen); err != nil {
				return err
			}
			if reflect.PointerTo(sf.Type).Implements(validatorType) {
				if !sf.IsExported() {
					return fmt.Errorf("scalers: %s.%s: an embedded struct with a Validate method must be exported, so the parser can call it", root, sf.Name)
				}
				s.parts = append(s.parts, at)
			}
			continue
		}
		if !tagged {
			continue
		}
		f, err := fieldOf(root, sf, at)
		if err != nil {
			return err
		}
		if seen[f.Name] {
			return fmt.Errorf("scalers: %s: key %q declared twice", root, f.Name)
		}
		seen[f.Name] = true
		s.fields = append(s.fields, f)
	}
	return nil
}

// fieldOf reads the ebb tag of sf, the field at index in root.
func fieldOf(root reflect.Type, sf reflect.StructField, index []int) (field, error) {
	parts := strings.Split(sf.Tag.Get("ebb"), ",")
	f := field{Param: Param{Name: strings.TrimSpace(parts[0]), Type: typeName(sf.Type)}, index: index}
	if f.Name == "" {
		return field{}, fmt.Errorf("scalers: %s.%s: empty name in ebb tag", root, sf.Name)
	}
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
			return field{}, fmt.Errorf("scalers: %s.%s: unknown ebb tag option %q", root, sf.Name, k)
		}
	}
	if !settable(sf.Type) {
		return field{}, fmt.Errorf("scalers: %s.%s: unsupported field type %s", root, sf.Name, sf.Type)
	}
	// Bounds and defaults must themselves parse, or every trigger of this type would misbehave.
	for _, b := range []struct{ opt, v string }{{"min", f.Min}, {"max", f.Max}} {
		if b.v == "" {
			continue
		}
		if _, err := parseBound(sf.Type, b.v); err != nil {
			return field{}, fmt.Errorf("scalers: %s.%s: %s %q: %w", root, sf.Name, b.opt, b.v, err)
		}
	}
	if f.Default != "" {
		if err := setValue(reflect.New(sf.Type).Elem(), f.Default); err != nil {
			return field{}, fmt.Errorf("scalers: %s.%s: default %q: %w", root, sf.Name, f.Default, err)
		}
	}
	return f, nil
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
		// NaN and the infinities parse, but as a threshold NaN passes every min and max and compares
		// false with every value (never active), and a target of NaN or +Inf is no target.
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("must be a finite number, got %q", s)
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
