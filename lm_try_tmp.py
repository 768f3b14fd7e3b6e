import time, tempfile, sys
from jaxlab.config import default_config, finish_config
from jaxlab.train import train_and_evaluate
from scripts import sample
c = default_config()
c.dataset.name, c.dataset.seq_len = "markov_tokens", 16
c.task.name, c.model.name = "language_model", "gpt"
c.model.num_layers, c.model.d_model, c.model.num_heads, c.model.block_size = 1, 32, 2, 16
c.optimizer.name, c.optimizer.learning_rate = "adamw", 3e-3
c.batch_size, c.eval_batch_size = 16, 64
c.num_train_steps = 200; c.log_every_steps = 50; c.eval_every_steps = c.checkpoint_every_steps = 200
c.best_metric, c.best_mode = "loss", "min"
finish_config(c)
w = tempfile.mkdtemp()
print(train_and_evaluate(c, w, async_checkpoints=False))
sample.main(["s", f"--workdir={w}", "--prompt=abc", "--num_tokens=60", "--top_k=5"])
sample.main(["s", f"--workdir={w}", "--num_tokens=40", "--temperature=0"])
