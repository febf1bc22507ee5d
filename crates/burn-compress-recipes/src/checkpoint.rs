//! Per-epoch training checkpoints: model, optimizer state and controller state of one training
//! phase, written as a directory that appears whole (written under a temporary name, then
//! renamed), so a run killed at any moment resumes from its last complete epoch.
//!
//! Layout: `<dir>/<phase>-<epochs done>/{model.bpk, optimizer.bpk, mask_optimizer.bpk,
//! state.json}`; only the newest checkpoint of a phase is kept.

use std::path::{Path, PathBuf};

use burn::module::Module;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::recipe::RecipeError;
use crate::train::Trainer;

/// What `state.json` holds besides the tensors.
#[derive(Serialize, Deserialize)]
struct State<H> {
    phase: String,
    epochs_done: usize,
    /// The training hook's state (compression controllers: schedule position, chosen channels).
    hook: H,
    /// Step losses so far (the training curve).
    losses: Vec<f32>,
}

/// The checkpoints of a run, under one directory.
pub struct Checkpoints {
    dir: PathBuf,
}

fn output_error(path: &Path, reason: impl ToString) -> RecipeError {
    RecipeError::Output {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl Checkpoints {
    /// Checkpoints under `dir` (created when the first one is saved).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The newest complete checkpoint of `phase`: its epoch count and directory.
    pub fn latest(&self, phase: &str) -> Option<(usize, PathBuf)> {
        self.all(phase)
            .into_iter()
            .filter(|(_, path)| path.join("state.json").is_file())
            .max_by_key(|(epochs, _)| *epochs)
    }

    /// Saves the state after `epochs_done` epochs of `phase`, then removes the older ones.
    pub fn save<M: Module, H: Serialize>(
        &self,
        phase: &str,
        epochs_done: usize,
        model: &M,
        trainer: &Trainer,
        hook: &H,
    ) -> Result<(), RecipeError> {
        let target = self.dir.join(format!("{phase}-{epochs_done}"));
        let partial = self.dir.join(format!(".{phase}-{epochs_done}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| output_error(&partial, e))?;
        let written = (|| -> Result<(), String> {
            model
                .clone()
                .save_file(partial.join("model.bpk"))
                .map_err(|e| e.to_string())?;
            trainer.save_optimizers(&partial)?;
            let state = State {
                phase: phase.to_string(),
                epochs_done,
                hook,
                losses: trainer.losses.clone(),
            };
            let json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
            std::fs::write(partial.join("state.json"), json).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_dir_all(&target);
            std::fs::rename(&partial, &target).map_err(|e| e.to_string())
        })();
        if let Err(reason) = written {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(output_error(&target, reason));
        }
        for (epochs, path) in self.all(phase) {
            if epochs != epochs_done {
                let _ = std::fs::remove_dir_all(path);
            }
        }
        Ok(())
    }

    fn all(&self, phase: &str) -> Vec<(usize, PathBuf)> {
        let prefix = format!("{phase}-");
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| {
                        let path = entry.ok()?.path();
                        let name = path.file_name()?.to_str()?.to_string();
                        let epochs = name.strip_prefix(&prefix)?.parse::<usize>().ok()?;
                        Some((epochs, path))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Loads the checkpoint in `path` into `model` (which must have the saved structure:
    /// the same compression attached) and `trainer`; returns the model, the epochs done and
    /// the hook's state.
    pub fn load<M: Module, H: DeserializeOwned>(
        path: &Path,
        model: M,
        trainer: &mut Trainer,
    ) -> Result<(M, usize, H), RecipeError> {
        let model = model
            .try_load_file(path.join("model.bpk"))
            .map_err(|e| output_error(&path.join("model.bpk"), e))?;
        trainer
            .load_optimizers(path)
            .map_err(|reason| output_error(path, reason))?;
        let text = std::fs::read_to_string(path.join("state.json"))
            .map_err(|e| output_error(&path.join("state.json"), e))?;
        let state: State<H> =
            serde_json::from_str(&text).map_err(|e| output_error(&path.join("state.json"), e))?;
        trainer.losses = state.losses;
        Ok((model, state.epochs_done, state.hook))
    }
}
