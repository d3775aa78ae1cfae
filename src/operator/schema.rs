//! `OpSchema`: input/output arity, in-place rules and required arguments of an operator type,
//! checked against every OperatorDef before the operator is built.

use std::sync::Arc;

use crate::proto::OperatorDef;

type CountPred = Arc<dyn Fn(usize) -> bool + Send + Sync>;
type PairPred = Arc<dyn Fn(usize, usize) -> bool + Send + Sync>;
type OutputCalc = Arc<dyn Fn(usize) -> usize + Send + Sync>;

/// Documentation of one argument, input or output, for the operator catalog
/// (`docs/operators.md` is generated from these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocEntry {
    /// Argument name, or the name of the input/output slot.
    pub name: String,
    pub doc: String,
    /// Arguments only: whether `verify` requires it.
    pub required: bool,
    /// Arguments only: the argument's type as the catalog shows it ("int", "float", "bool",
    /// "string", "int[]", "float[]", "string[]", "NetDef" …); empty when undocumented.
    pub arg_type: String,
    /// Arguments only: the value used when the def lacks the argument, as text; empty when
    /// undocumented.
    pub default: String,
}

impl DocEntry {
    fn new(name: impl Into<String>, doc: impl Into<String>, required: bool) -> Self {
        Self {
            name: name.into(),
            doc: doc.into(),
            required,
            arg_type: String::new(),
            default: String::new(),
        }
    }
}

/// Schema of one operator type. Defaults: any number of inputs and outputs, no in-place pair
/// allowed, no argument required.
#[derive(Clone)]
pub struct OpSchema {
    name: String,
    min_input: usize,
    max_input: usize,
    min_output: usize,
    max_output: usize,
    inputs_allowed: Option<CountPred>,
    outputs_allowed: Option<CountPred>,
    inputs_outputs_allowed: Option<PairPred>,
    output_calculator: Option<OutputCalc>,
    inplace_allowed: PairPred,
    inplace_enforced: PairPred,
    required_args: Vec<String>,
    doc: String,
    /// How caffe2rs's operator differs from Caffe2's (checks added, bugs not reproduced …).
    differences: String,
    arg_docs: Vec<DocEntry>,
    /// (index, entry) of documented inputs and outputs.
    input_docs: Vec<(usize, DocEntry)>,
    output_docs: Vec<(usize, DocEntry)>,
}

impl std::fmt::Debug for OpSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpSchema")
            .field("name", &self.name)
            .field("inputs", &(self.min_input, self.max_input))
            .field("outputs", &(self.min_output, self.max_output))
            .finish_non_exhaustive()
    }
}

impl OpSchema {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            min_input: 0,
            max_input: usize::MAX,
            min_output: 0,
            max_output: usize::MAX,
            inputs_allowed: None,
            outputs_allowed: None,
            inputs_outputs_allowed: None,
            output_calculator: None,
            inplace_allowed: Arc::new(|_, _| false),
            inplace_enforced: Arc::new(|_, _| false),
            required_args: Vec::new(),
            doc: String::new(),
            differences: String::new(),
            arg_docs: Vec::new(),
            input_docs: Vec::new(),
            output_docs: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn doc(&self) -> &str {
        &self.doc
    }
    pub fn set_doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }
    /// Documents an argument (Caffe2's `Arg(name, description)`).
    pub fn arg(mut self, name: impl Into<String>, doc: impl Into<String>) -> Self {
        self.arg_docs.push(DocEntry::new(name, doc, false));
        self
    }
    /// Documents an argument with its type and default (see `DocEntry`), for the catalog.
    pub fn typed_arg(
        mut self,
        name: impl Into<String>,
        arg_type: impl Into<String>,
        default: impl Into<String>,
        doc: impl Into<String>,
    ) -> Self {
        let mut entry = DocEntry::new(name, doc, false);
        entry.arg_type = arg_type.into();
        entry.default = default.into();
        self.arg_docs.push(entry);
        self
    }
    /// `required_arg` with its type (a required argument has no default).
    pub fn typed_required_arg(
        mut self,
        name: impl Into<String>,
        arg_type: impl Into<String>,
        doc: impl Into<String>,
    ) -> Self {
        let name = name.into();
        self.required_args.push(name.clone());
        let mut entry = DocEntry::new(name, doc, true);
        entry.arg_type = arg_type.into();
        entry.default = "(required)".into();
        self.arg_docs.push(entry);
        self
    }
    /// How this operator differs from Caffe2's, for the catalog.
    pub fn caffe2_differences(mut self, text: impl Into<String>) -> Self {
        self.differences = text.into();
        self
    }
    pub fn differences(&self) -> &str {
        &self.differences
    }
    /// Documents an argument every def must carry (Caffe2's `Arg(name, description, true)`):
    /// `verify` fails without it.
    pub fn required_arg(mut self, name: impl Into<String>, doc: impl Into<String>) -> Self {
        let name = name.into();
        self.required_args.push(name.clone());
        self.arg_docs.push(DocEntry::new(name, doc, true));
        self
    }
    /// Documents input `index` (Caffe2's `Input(index, name, description)`).
    pub fn input(mut self, index: usize, name: impl Into<String>, doc: impl Into<String>) -> Self {
        self.input_docs
            .push((index, DocEntry::new(name, doc, false)));
        self
    }
    /// Documents output `index` (Caffe2's `Output(index, name, description)`).
    pub fn output(mut self, index: usize, name: impl Into<String>, doc: impl Into<String>) -> Self {
        self.output_docs
            .push((index, DocEntry::new(name, doc, false)));
        self
    }
    /// Documented arguments, in declaration order.
    pub fn arg_docs(&self) -> &[DocEntry] {
        &self.arg_docs
    }
    /// Documented inputs as (index, entry), in declaration order.
    pub fn input_docs(&self) -> &[(usize, DocEntry)] {
        &self.input_docs
    }
    /// Documented outputs as (index, entry), in declaration order.
    pub fn output_docs(&self) -> &[(usize, DocEntry)] {
        &self.output_docs
    }
    pub fn min_input(&self) -> usize {
        self.min_input
    }
    pub fn max_input(&self) -> usize {
        self.max_input
    }
    pub fn min_output(&self) -> usize {
        self.min_output
    }
    pub fn max_output(&self) -> usize {
        self.max_output
    }

    /// Exactly `n` inputs.
    pub fn num_inputs(self, n: usize) -> Self {
        self.num_inputs_range(n, n)
    }
    pub fn num_inputs_range(mut self, min: usize, max: usize) -> Self {
        self.min_input = min;
        self.max_input = max;
        self
    }
    /// One of the listed input counts.
    pub fn num_inputs_set(mut self, allowed: &[usize]) -> Self {
        let allowed = allowed.to_vec();
        self.inputs_allowed = Some(Arc::new(move |n| allowed.contains(&n)));
        self
    }
    pub fn num_inputs_fn(mut self, f: impl Fn(usize) -> bool + Send + Sync + 'static) -> Self {
        self.inputs_allowed = Some(Arc::new(f));
        self
    }
    /// Exactly `n` outputs.
    pub fn num_outputs(self, n: usize) -> Self {
        self.num_outputs_range(n, n)
    }
    pub fn num_outputs_range(mut self, min: usize, max: usize) -> Self {
        self.min_output = min;
        self.max_output = max;
        self
    }
    pub fn num_outputs_set(mut self, allowed: &[usize]) -> Self {
        let allowed = allowed.to_vec();
        self.outputs_allowed = Some(Arc::new(move |n| allowed.contains(&n)));
        self
    }
    pub fn num_outputs_fn(mut self, f: impl Fn(usize) -> bool + Send + Sync + 'static) -> Self {
        self.outputs_allowed = Some(Arc::new(f));
        self
    }
    /// A predicate on (inputs, outputs) counts.
    pub fn num_inputs_outputs(
        mut self,
        f: impl Fn(usize, usize) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.inputs_outputs_allowed = Some(Arc::new(f));
        self
    }
    /// The number of outputs as a function of the number of inputs.
    pub fn output_calculator(mut self, f: impl Fn(usize) -> usize + Send + Sync + 'static) -> Self {
        self.output_calculator = Some(Arc::new(f));
        self
    }
    /// As many outputs as inputs.
    pub fn same_number_of_output(self) -> Self {
        self.output_calculator(|n| n)
    }
    /// These (input, output) index pairs may share a name.
    pub fn allow_inplace(mut self, pairs: &[(usize, usize)]) -> Self {
        let pairs = pairs.to_vec();
        self.inplace_allowed = Arc::new(move |i, o| pairs.contains(&(i, o)));
        self
    }
    pub fn allow_inplace_fn(
        mut self,
        f: impl Fn(usize, usize) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.inplace_allowed = Arc::new(f);
        self
    }
    /// Input i may share its name with output i.
    pub fn allow_one_to_one_inplace(self) -> Self {
        self.allow_inplace_fn(|i, o| i == o)
    }
    /// These (input, output) index pairs must share a name.
    pub fn enforce_inplace(mut self, pairs: &[(usize, usize)]) -> Self {
        let pairs = pairs.to_vec();
        self.inplace_enforced = Arc::new(move |i, o| pairs.contains(&(i, o)));
        self
    }
    pub fn enforce_inplace_fn(
        mut self,
        f: impl Fn(usize, usize) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.inplace_enforced = Arc::new(f);
        self
    }
    /// Input i must share its name with output i.
    pub fn enforce_one_to_one_inplace(self) -> Self {
        self.enforce_inplace_fn(|i, o| i == o)
    }
    /// An argument every def must carry.
    pub fn arg_is_required(mut self, name: impl Into<String>) -> Self {
        self.required_args.push(name.into());
        self
    }

    /// The number of outputs the calculator predicts for `inputs` (None without a calculator).
    pub fn calculate_output(&self, inputs: usize) -> Option<usize> {
        self.output_calculator.as_ref().map(|f| f(inputs))
    }

    /// Caffe2's `OpSchema::Verify`: `Err(reason)` names the first rule `def` breaks.
    pub fn verify(&self, def: &OperatorDef) -> Result<(), String> {
        let (ni, no) = (def.input.len(), def.output.len());
        if ni < self.min_input || ni > self.max_input {
            return Err(format!(
                "Input size {ni} not in range [min={}, max={}].",
                self.min_input,
                bound(self.max_input)
            ));
        }
        if self.inputs_allowed.as_ref().is_some_and(|f| !f(ni)) {
            return Err(format!("Input size {ni} not in allowed input sizes."));
        }
        if no < self.min_output || no > self.max_output {
            return Err(format!(
                "Output size {no} not in range [min={}, max={}].",
                self.min_output,
                bound(self.max_output)
            ));
        }
        if self.outputs_allowed.as_ref().is_some_and(|f| !f(no)) {
            return Err(format!("Output size {no} not in allowed output sizes."));
        }
        if self
            .inputs_outputs_allowed
            .as_ref()
            .is_some_and(|f| !f(ni, no))
        {
            return Err(format!(
                "Combination of input size {ni} and output size {no} not in allowed."
            ));
        }
        if let Some(expected) = self.calculate_output(ni) {
            if expected != no {
                return Err(format!(
                    "Output size {no} not matching expected output size, which is {expected}"
                ));
            }
        }
        for (i, input) in def.input.iter().enumerate() {
            for (o, output) in def.output.iter().enumerate() {
                if input == output
                    && !(self.inplace_allowed)(i, o)
                    && !(self.inplace_enforced)(i, o)
                {
                    return Err(format!(
                        "Input index {i} and output idx {o} ({input}) are set to be in-place but this is actually not supported by op {}.",
                        self.name
                    ));
                }
            }
        }
        for (i, input) in def.input.iter().enumerate() {
            for (o, output) in def.output.iter().enumerate() {
                if (self.inplace_enforced)(i, o) && input != output {
                    return Err(format!(
                        "Input index {i} ({input}) and output idx {o} ({output}) are not in-place although the op {} requires in-place input and output.",
                        self.name
                    ));
                }
            }
        }
        for required in &self.required_args {
            if !def.arg.iter().any(|a| a.name() == required) {
                return Err(format!(
                    "Argument '{required}' is required for Operator '{}'.",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

fn bound(n: usize) -> String {
    if n == usize::MAX {
        "INT_MAX".to_string()
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Argument;

    fn def(inputs: &[&str], outputs: &[&str]) -> OperatorDef {
        OperatorDef {
            r#type: Some("OpSchemaTest".into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    // Ported from operator_schema_test.cc (BasicSchema, SpecifiedInputOutput,
    // InputOutputRelation, SameInputOutput, CalculateOutput, Inplace) and RequiredArg.Basic.
    #[test]
    fn basic_schema_checks_ranges() {
        let s = OpSchema::new("OpSchemaTestOp")
            .num_inputs_range(1, 1)
            .num_outputs_range(1, 1);
        assert!(s.verify(&def(&["in"], &["out"])).is_ok());
        assert!(s.verify(&def(&[], &["out"])).is_err());
        assert!(s.verify(&def(&["in1", "in2"], &["out"])).is_err());
        assert!(s.verify(&def(&["in"], &[])).is_err());
        let e = s.verify(&def(&["in"], &["out1", "out2"])).unwrap_err();
        assert!(
            e.contains("Output size 2 not in range [min=1, max=1]"),
            "{e}"
        );
    }

    #[test]
    fn specified_input_output_sets() {
        let s = OpSchema::new("X")
            .num_inputs_set(&[2, 4])
            .num_outputs_set(&[1, 3]);
        assert!(s.verify(&def(&["a"], &["o"])).is_err());
        assert!(s.verify(&def(&["a", "b"], &["o"])).is_ok());
        assert!(s.verify(&def(&["a", "b"], &["o", "p"])).is_err());
        assert!(
            s.verify(&def(&["a", "b", "c", "d"], &["o", "p", "q"]))
                .is_ok()
        );
    }

    #[test]
    fn input_output_relation() {
        let s = OpSchema::new("X")
            .num_inputs_outputs(|i, o| matches!((i, o), (1, 1) | (2, 1) | (3, 2)));
        assert!(s.verify(&def(&["a"], &["o"])).is_ok());
        assert!(s.verify(&def(&["a", "b"], &["o"])).is_ok());
        assert!(s.verify(&def(&["a", "b", "c"], &["o", "p"])).is_ok());
        assert!(s.verify(&def(&["a"], &["o", "p"])).is_err());
        assert!(s.verify(&def(&["a", "b", "c"], &["o"])).is_err());
    }

    #[test]
    fn same_number_of_outputs() {
        let s = OpSchema::new("X").same_number_of_output();
        assert!(s.verify(&def(&["a"], &["o"])).is_ok());
        assert!(s.verify(&def(&["a", "b"], &["o", "p"])).is_ok());
        assert!(s.verify(&def(&["a"], &["o", "p"])).is_err());
        assert_eq!(s.calculate_output(3), Some(3));
    }

    #[test]
    fn calculate_output() {
        let s = OpSchema::new("X")
            .num_inputs_range(1, 5)
            .num_outputs_range(2, 6)
            .output_calculator(|n| n + 1);
        assert_eq!(s.calculate_output(2), Some(3));
        assert!(s.verify(&def(&["a", "b"], &["o", "p", "q"])).is_ok());
        assert!(s.verify(&def(&["a", "b"], &["o", "p"])).is_err());
    }

    #[test]
    fn inplace_rules() {
        let s = OpSchema::new("X")
            .num_inputs(5)
            .num_outputs(5)
            .allow_inplace(&[(0, 0), (1, 1)])
            .enforce_inplace(&[(2, 2), (3, 3)]);
        // Allowed, not required.
        assert!(
            s.verify(&def(
                &["in0", "in1", "in2", "in3", "in4"],
                &["out0", "out1", "in2", "in3", "out4"]
            ))
            .is_ok()
        );
        assert!(
            s.verify(&def(
                &["in0", "in1", "in2", "in3", "in4"],
                &["in0", "in1", "in2", "in3", "out4"]
            ))
            .is_ok()
        );
        // Enforced pair not in place.
        let e = s
            .verify(&def(
                &["in0", "in1", "in2", "in3", "in4"],
                &["out0", "out1", "out2", "in3", "out4"],
            ))
            .unwrap_err();
        assert!(e.contains("not in-place"), "{e}");
        // In place where neither rule covers the pair.
        let e = s
            .verify(&def(
                &["in0", "in1", "in2", "in3", "in4"],
                &["out0", "out1", "in2", "in3", "in4"],
            ))
            .unwrap_err();
        assert!(e.contains("(in4) are set to be in-place"), "{e}");
        // Default: no in-place at all.
        assert!(OpSchema::new("Y").verify(&def(&["a"], &["a"])).is_err());
        let one = OpSchema::new("Z").allow_one_to_one_inplace();
        assert!(one.verify(&def(&["a", "b"], &["a", "b"])).is_ok());
        assert!(one.verify(&def(&["a", "b"], &["b", "a"])).is_err());
        let forced = OpSchema::new("W").enforce_one_to_one_inplace();
        assert!(forced.verify(&def(&["a"], &["b"])).is_err());
        assert!(forced.verify(&def(&["a"], &["a"])).is_ok());
    }

    #[test]
    fn argument_and_slot_docs_are_kept_and_required_args_enforced() {
        let s = OpSchema::new("Documented")
            .arg("shape", "The shape.")
            .required_arg("values", "The values.")
            .input(0, "input", "Optional shape input.")
            .output(0, "output", "The filled tensor.");
        let names: Vec<(&str, bool)> = s
            .arg_docs()
            .iter()
            .map(|d| (d.name.as_str(), d.required))
            .collect();
        assert_eq!(names, [("shape", false), ("values", true)]);
        assert_eq!(s.input_docs()[0].1.name, "input");
        assert_eq!(s.output_docs()[0].0, 0);
        let e = s.verify(&def(&[], &["o"])).unwrap_err();
        assert!(e.contains("Argument 'values' is required"), "{e}");
    }

    #[test]
    fn required_argument_must_be_present() {
        let s = OpSchema::new("Req").arg_is_required("test_arg");
        let e = s.verify(&def(&[], &[])).unwrap_err();
        assert!(e.contains("Argument 'test_arg' is required"), "{e}");
        let mut d = def(&[], &[]);
        d.arg.push(Argument {
            name: Some("test_arg".into()),
            i: Some(1),
            ..Default::default()
        });
        assert!(s.verify(&d).is_ok());
    }
}
