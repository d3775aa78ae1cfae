//! Argument access with Caffe2's rules: single arguments fall back to a default when absent
//! and enforce the field their type reads (`f`, `i`, `s`, `n`), integers narrow losslessly;
//! repeated arguments read `floats`/`ints`/`strings`/`nets` and default to empty.

use std::collections::BTreeMap;

use crate::error::{C2rsError, Result};
use crate::proto::{Argument, NetDef};

/// A type an argument can be read as.
pub trait ArgValue: Sized {
    /// The field a single argument of this type must have (`f`, `i`, `s`, `n`).
    const FIELD: &'static str;
    /// Reads a single argument; `None` when the field is absent.
    fn single(arg: &Argument) -> Option<Result<Self>>;
    /// Reads a repeated argument's values.
    fn repeated(arg: &Argument) -> Result<Vec<Self>>;
}

fn narrow<T: TryFrom<i64>>(name: &str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| {
        C2rsError::enforce(format!(
            "Value {v} of argument {name} cannot be represented correctly in a target type {}",
            std::any::type_name::<T>()
        ))
    })
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ArgValue for $t {
            const FIELD: &'static str = "i";
            fn single(arg: &Argument) -> Option<Result<Self>> {
                arg.i.map(|v| narrow(arg.name(), v))
            }
            fn repeated(arg: &Argument) -> Result<Vec<Self>> {
                arg.ints.iter().map(|&v| narrow(arg.name(), v)).collect()
            }
        }
    )*};
}
int_arg!(i8, i16, i32, i64, u8, u16, u32, u64, usize);

impl ArgValue for bool {
    const FIELD: &'static str = "i";
    fn single(arg: &Argument) -> Option<Result<Self>> {
        arg.i.map(|v| Ok(v != 0))
    }
    fn repeated(arg: &Argument) -> Result<Vec<Self>> {
        Ok(arg.ints.iter().map(|&v| v != 0).collect())
    }
}

impl ArgValue for f32 {
    const FIELD: &'static str = "f";
    fn single(arg: &Argument) -> Option<Result<Self>> {
        arg.f.map(Ok)
    }
    fn repeated(arg: &Argument) -> Result<Vec<Self>> {
        Ok(arg.floats.clone())
    }
}

impl ArgValue for f64 {
    const FIELD: &'static str = "f";
    fn single(arg: &Argument) -> Option<Result<Self>> {
        arg.f.map(|v| Ok(f64::from(v)))
    }
    fn repeated(arg: &Argument) -> Result<Vec<Self>> {
        Ok(arg.floats.iter().map(|&v| f64::from(v)).collect())
    }
}

impl ArgValue for Vec<u8> {
    const FIELD: &'static str = "s";
    fn single(arg: &Argument) -> Option<Result<Self>> {
        arg.s.clone().map(Ok)
    }
    fn repeated(arg: &Argument) -> Result<Vec<Self>> {
        Ok(arg.strings.clone())
    }
}

impl ArgValue for String {
    const FIELD: &'static str = "s";
    fn single(arg: &Argument) -> Option<Result<Self>> {
        arg.s.as_ref().map(|s| utf8(arg.name(), s))
    }
    fn repeated(arg: &Argument) -> Result<Vec<Self>> {
        arg.strings.iter().map(|s| utf8(arg.name(), s)).collect()
    }
}

fn utf8(name: &str, s: &[u8]) -> Result<String> {
    String::from_utf8(s.to_vec())
        .map_err(|_| C2rsError::enforce(format!("Argument {name} is not valid UTF-8")))
}

impl ArgValue for NetDef {
    const FIELD: &'static str = "n";
    fn single(arg: &Argument) -> Option<Result<Self>> {
        arg.n.clone().map(Ok)
    }
    fn repeated(arg: &Argument) -> Result<Vec<Self>> {
        Ok(arg.nets.clone())
    }
}

/// The arguments of one OperatorDef (or NetDef), by name.
#[derive(Clone, Debug, Default)]
pub struct ArgumentHelper {
    args: BTreeMap<String, Argument>,
}

impl ArgumentHelper {
    /// Indexes `args` by name. Duplicate names with different content are an enforce;
    /// identical duplicates are accepted (Caffe2 only warned).
    pub fn new(args: &[Argument]) -> Result<Self> {
        let mut map = BTreeMap::new();
        for a in args {
            let name = a.name().to_string();
            if let Some(previous) = map.get(&name) {
                if previous != a {
                    return Err(C2rsError::enforce(format!(
                        "Duplicated argument name [{name}] found in operator def"
                    )));
                }
                continue;
            }
            map.insert(name, a.clone());
        }
        Ok(Self { args: map })
    }

    pub fn has_argument(&self, name: &str) -> bool {
        self.args.contains_key(name)
    }

    /// The raw argument.
    pub fn get(&self, name: &str) -> Option<&Argument> {
        self.args.get(name)
    }

    /// Whether `name` is present and has the field `T` reads.
    pub fn has_single_argument_of_type<T: ArgValue>(&self, name: &str) -> bool {
        self.args.get(name).is_some_and(|a| T::single(a).is_some())
    }

    /// Caffe2's `GetSingleArgument<T>(name, default)`.
    pub fn single<T: ArgValue>(&self, name: &str, default: T) -> Result<T> {
        match self.args.get(name) {
            None => Ok(default),
            Some(a) => T::single(a).unwrap_or_else(|| {
                Err(C2rsError::enforce(format!(
                    "Argument {name} does not have the right field: expected field {}",
                    T::FIELD
                )))
            }),
        }
    }

    /// Caffe2's `GetRepeatedArgument<T>(name)`: empty when absent.
    pub fn repeated<T: ArgValue>(&self, name: &str) -> Result<Vec<T>> {
        match self.args.get(name) {
            None => Ok(Vec::new()),
            Some(a) => T::repeated(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str) -> Argument {
        Argument {
            name: Some(name.to_string()),
            ..Default::default()
        }
    }

    // Ported from operator_test.cc TestParameterAccess / TestDefaultValue /
    // CannotAccessParameterWithWrongType.
    #[test]
    fn parameters_read_their_field_or_default() {
        let a = Argument {
            f: Some(1.0),
            ..arg("arg0")
        };
        let b = Argument {
            ints: vec![2, 3],
            ..arg("arg1")
        };
        let c = Argument {
            s: Some(b"argstring".to_vec()),
            ..arg("arg2")
        };
        let h = ArgumentHelper::new(&[a, b, c]).unwrap();
        assert_eq!(h.single::<f32>("arg0", 0.0).unwrap(), 1.0);
        assert_eq!(h.repeated::<i32>("arg1").unwrap(), vec![2, 3]);
        assert_eq!(
            h.single::<String>("arg2", String::new()).unwrap(),
            "argstring"
        );
        assert_eq!(h.single::<f32>("arg-nonexisting", 0.5).unwrap(), 0.5);
        assert_eq!(h.single::<i64>("arg-nonexisting", 7).unwrap(), 7);
        assert!(h.repeated::<f32>("arg-nonexisting").unwrap().is_empty());
        let e = h.single::<i32>("arg0", 0).unwrap_err();
        assert_eq!(
            e.message(),
            "Argument arg0 does not have the right field: expected field i"
        );
        assert!(h.has_single_argument_of_type::<f32>("arg0"));
        assert!(!h.has_single_argument_of_type::<i32>("arg0"));
    }

    #[test]
    fn integers_narrow_losslessly() {
        let big = Argument {
            i: Some(1 << 40),
            ..arg("big")
        };
        let h = ArgumentHelper::new(&[big]).unwrap();
        assert_eq!(h.single::<i64>("big", 0).unwrap(), 1 << 40);
        assert!(
            h.single::<i32>("big", 0)
                .unwrap_err()
                .message()
                .contains("cannot be represented")
        );
        assert!(h.single::<bool>("big", false).unwrap());
    }

    #[test]
    fn conflicting_duplicate_arguments_are_rejected() {
        let x1 = Argument {
            i: Some(1),
            ..arg("x")
        };
        let x2 = Argument {
            i: Some(2),
            ..arg("x")
        };
        assert!(ArgumentHelper::new(&[x1.clone(), x1.clone()]).is_ok());
        assert!(
            ArgumentHelper::new(&[x1, x2])
                .unwrap_err()
                .message()
                .contains("Duplicated argument name [x]")
        );
    }
}
