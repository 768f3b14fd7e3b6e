import time, tempfile, cProfile, pstats
from tests.tasks.test_language_model import lm_config
from jaxlab.train import train_and_evaluate
c = lm_config(); c.eval_batch_size = 64
t=time.time(); train_and_evaluate(c, tempfile.mkdtemp(), async_checkpoints=False); print('first', time.time()-t)
c.num_train_steps = 30; c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 30
c.optimizer.learning_rate = 5e-2
t=time.time()
cProfile.run("r = train_and_evaluate(c, tempfile.mkdtemp(), async_checkpoints=False)", "/tmp/prof")
print('second', time.time()-t, r)
pstats.Stats("/tmp/prof").sort_stats("cumtime").print_stats(25)
