"""A stand-in for the part of Hugging Face's `transformers` the Volume page's fine-tuning example
uses (this machine has no model hub and no GPU): a Seq2SeqTrainer whose `train()` writes a checkpoint
directory of a realistic size every `save_steps` steps into `output_dir`, keeps `save_total_limit`
of them, and resumes from the last one, as the real trainer does with `resume_from_checkpoint=True`."""

import json
import os
import re
import shutil


class Seq2SeqTrainingArguments:
    def __init__(self, output_dir, max_steps=6, save_steps=2, save_total_limit=2, checkpoint_bytes=16 << 20, **_):
        self.output_dir = output_dir
        self.max_steps = max_steps
        self.save_steps = save_steps
        self.save_total_limit = save_total_limit
        self.checkpoint_bytes = checkpoint_bytes


class Seq2SeqTrainer:
    def __init__(self, model=None, args=None, train_dataset=None, eval_dataset=None, **_):
        self.args = args

    def _checkpoints(self):
        found = []
        for name in os.listdir(self.args.output_dir) if os.path.isdir(self.args.output_dir) else []:
            match = re.fullmatch(r"checkpoint-(\d+)", name)
            if match and os.path.exists(os.path.join(self.args.output_dir, name, "trainer_state.json")):
                found.append(int(match.group(1)))
        return sorted(found)

    def train(self, resume_from_checkpoint=None):
        os.makedirs(self.args.output_dir, exist_ok=True)
        done = self._checkpoints()
        start = done[-1] if (resume_from_checkpoint and done) else 0
        for step in range(start + 1, self.args.max_steps + 1):
            if step % self.args.save_steps:
                continue
            directory = os.path.join(self.args.output_dir, f"checkpoint-{step}")
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "pytorch_model.bin"), "wb") as f:
                f.write(os.urandom(self.args.checkpoint_bytes))
            with open(os.path.join(directory, "trainer_state.json"), "w") as f:  # written last: the checkpoint is whole
                json.dump({"global_step": step}, f)
            for old in self._checkpoints()[: -self.args.save_total_limit]:
                shutil.rmtree(os.path.join(self.args.output_dir, f"checkpoint-{old}"))
        return {"resumed_from": start, "global_step": self.args.max_steps}
