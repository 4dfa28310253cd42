"""python -m experiments.final_model: the recipe on every subject, written as a model folder
that loads back and predicts on the synthetic database's raw clips; HFA-Net's folder holds
the original network's state dict."""

import json

import jax
import numpy as np
import pytest

import hfa_jax
from experiments import final_model, predict
from hfa_jax import convert, trained
from tests.conftest import TINY


@pytest.fixture(scope='module')
def final(tmp_path_factory, tiny_data, tiny_run):
  """A final model of TINY's recipe, its card citing the finished LOSO run of that recipe."""
  data, run = tiny_data, tiny_run[0]
  out = tmp_path_factory.mktemp('final') / 'model'
  args = [a for a in TINY if a not in ('--checkpoint_minutes', '0')]
  code = final_model.main([*args, '--data_dir', str(data), '--out', str(out), '--loso', str(run)])
  assert code == 0
  return out, data, run


def test_the_folder_loads_back_with_its_card(final):
  out, _, run = final
  model, variables, card = hfa_jax.load_model(out)
  assert type(model).__name__ == 'TinyNet' and set(variables) == {'params', 'batch_stats'}
  assert card['class_names'] == ['negative', 'positive', 'surprise'] and card['input']['side'] == 32
  assert card['training_data']['subjects'] == 3 and card['recipe']['epochs'] == 2
  assert card['preprocessing']['kind'] == 'frames' and card['seed'] == 0
  summary = json.loads((run / 'summary.json').read_text())
  assert card['loso']['uf1'] == summary['uf1'] and card['loso']['same_recipe'] is True
  text = (out / 'README.md').read_text()
  assert 'every subject' in text and 'LOSO result of the same recipe' in text
  logits = model.apply(variables, np.zeros((2, 32, 32, 3), np.float32), train=False)
  assert logits.shape == (2, 3) and np.isfinite(logits).all()


def test_it_predicts_on_the_raw_clips(final, capsys):
  out, data, _ = final
  clips = sorted(p for p in (data / 'manual-1subjects-seed0' / 'smic').rglob('s*_*') if p.is_dir())
  assert clips
  assert predict.main(['--model', str(out), str(clips[0])]) == 0
  assert clips[0].name in capsys.readouterr().out


def test_a_loso_of_another_recipe_is_flagged(final, tmp_path):
  out, data, run = final
  args = [a for a in TINY if a not in ('--checkpoint_minutes', '0')]
  code = final_model.main(
    [
      *args,
      '--epochs',
      '1',
      '--data_dir',
      str(data),
      '--out',
      str(tmp_path / 'm'),
      '--loso',
      str(run),
    ]
  )
  assert code == 0
  card = json.loads((tmp_path / 'm' / 'model.json').read_text())
  assert card['loso']['same_recipe'] is False
  assert 'ANOTHER recipe' in (tmp_path / 'm' / 'README.md').read_text()


def test_hfanet_folder_has_the_original_state_dict(tmp_path):
  net = hfa_jax.HFANet(num_classes=3)
  variables = jax.jit(net.init)(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))
  card = dict(model='hfanet', num_classes=3, class_names=['a', 'b', 'c'], input=dict(side=32))
  folder = trained.save_model(tmp_path / 'm', variables, card)
  saved = json.loads((folder / 'model.json').read_text())['pytorch']
  want = convert.to_torch_state_dict(jax.device_get(dict(variables)))
  if saved.endswith('.npz'):
    got = dict(np.load(folder / saved))
  else:
    import torch

    got = {k: v.numpy() for k, v in torch.load(folder / saved).items()}
  assert set(got) == set(want)
  for k in want:
    np.testing.assert_array_equal(got[k], want[k])
  back = convert.from_torch_state_dict(got)  # and it converts back to the saved weights
  loaded = hfa_jax.load_model(folder)[1]
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(back), loaded)
