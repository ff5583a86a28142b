# The Volume page's Hugging Face checkpointing example, as written there but for the import line,
# with what the page leaves out filled in; `transformers` is a stand-in (python/examples/standins,
# put on PYTHONPATH) that writes 16 MiB checkpoints, this machine having no model hub and no GPU.
# Run: PYTHONPATH=python/examples/standins python -m silo run python/examples/finetune.py
import pathlib

import silo as modal

stub = modal.Stub()
volume = modal.Volume.persisted("finetune-checkpoints")

VOL_MOUNT_PATH = pathlib.Path("/vol")


@stub.function(
    gpu="A10g",
    timeout=7_200,
    volumes={VOL_MOUNT_PATH: volume},
    _allow_background_volume_commits=True,
)
def finetune(max_steps: int):
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    training_args = Seq2SeqTrainingArguments(
        output_dir=str(VOL_MOUNT_PATH / "model"),
        max_steps=max_steps,
    )
    trainer = Seq2SeqTrainer(model=None, args=training_args)
    return trainer.train(resume_from_checkpoint=True)


@stub.local_entrypoint()
def main(max_steps: str = "6"):
    print(finetune.remote(int(max_steps)))
