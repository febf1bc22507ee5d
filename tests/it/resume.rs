//! A recipe run stopped mid-epoch and resumed from its checkpoints ends with exactly the
//! weights (masks and quantizer ranges included) of a run that was never stopped, and the
//! saved run rebuilds from its folder into the same tensors.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn_compress_recipes::recipe::RecipeError;
use burn_compress_recipes::{load_compressed, run_recipe_with, Recipe, ReferenceCnn, RunOptions};

use crate::common::{mnist, trained_fp32};

/// Every float tensor of the model (parameters, masks, quantizer ranges) by path.
#[derive(Default)]
struct Values {
    path: Vec<String>,
    values: BTreeMap<String, Vec<f32>>,
}

impl ModuleVisitor for Values {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data().try_to_vec::<f32>().unwrap();
        self.values.insert(self.path.join("."), data);
    }
}

fn values(model: &ReferenceCnn) -> BTreeMap<String, Vec<f32>> {
    let mut visitor = Values::default();
    model.visit(&mut visitor);
    visitor.values
}

#[test]
fn a_run_stopped_mid_epoch_and_resumed_ends_bit_identical() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Pruning (schedule per step, chosen channels) + QAT (learned ranges), 2 epochs of 125 steps.
    let recipe = Recipe::from_file(&root.join("configs/mnist_prune50_int8.json")).unwrap();
    let data = mnist();
    let fp32 = trained_fp32();

    let straight = tempfile::tempdir().unwrap();
    let options = RunOptions {
        out_dir: Some(straight.path().to_path_buf()),
        ..RunOptions::default()
    };
    let (expected, _) = run_recipe_with(&recipe, &data, Some(fp32.clone()), &options).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let stopped = RunOptions {
        out_dir: Some(dir.path().to_path_buf()),
        stop_after_steps: Some(190),
        ..RunOptions::default()
    };
    match run_recipe_with(&recipe, &data, Some(fp32.clone()), &stopped) {
        Err(RecipeError::Interrupted { phase, epoch }) => {
            assert_eq!((phase, epoch), ("finetune", 1))
        }
        other => panic!("expected an interruption, got {:?}", other.map(|(_, s)| s)),
    }
    assert!(dir
        .path()
        .join("checkpoints/finetune-1/state.json")
        .is_file());
    assert!(
        !dir.path().join("compressed.bpk").exists(),
        "no final output after a stop"
    );

    let resumed = RunOptions {
        out_dir: Some(dir.path().to_path_buf()),
        resume: true,
        ..RunOptions::default()
    };
    let (got, _) = run_recipe_with(&recipe, &data, Some(fp32), &resumed).unwrap();
    // The saved run rebuilds from its config, plan and checkpoint (what `burn-compress
    // eval/export/stats CONFIG` do) into the same tensors.
    let restored = load_compressed(&recipe, &data, dir.path(), &Device::flex()).unwrap();
    assert!(
        values(&restored) == values(&got.compressed),
        "the saved run rebuilds differently"
    );
    let (expected, got) = (values(&expected.compressed), values(&got.compressed));
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (path, want) in &expected {
        assert!(got[path] == *want, "`{path}` differs after resuming");
    }
}
