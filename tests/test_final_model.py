"""python -m experiments.final_model: the recipe on every subject, written as a model folder
that loads back and predicts on the synthetic database's raw clips; HFA-Net's folder holds
the original network's state dict."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import hfa_jax
from experiments import final_model
from experiments import predict as predict_command
from hfa_jax import convert, input_checks, predict, trained
from hfa_jax.environment import code_version
from tests.conftest import TINY
from tests.quick_compile import QUICK_COMPILE


FINAL = [a for a in TINY if a not in ('--checkpoint_minutes', '0')]


@pytest.fixture(scope='module')
def final(tmp_path_factory, tiny_data, tiny_run):
  """A final model of TINY's recipe, its card citing the finished LOSO run of that recipe."""
  data, run = tiny_data, tiny_run[0]
  out = tmp_path_factory.mktemp('final') / 'model'
  code = final_model.main([*FINAL, '--data_dir', str(data), '--out', str(out), '--loso', str(run)])
  assert code == 0
  return out, data, run


def test_the_folder_loads_back_with_its_card(final, capsys):
  out, _, run = final
  model, variables, card = hfa_jax.load_model(out)
  assert type(model).__name__ == 'TinyNet' and set(variables) == {'params', 'batch_stats'}
  assert card['class_names'] == ['negative', 'positive', 'surprise'] and card['input']['side'] == 32
  assert card['training_data']['subjects'] == 3 and card['recipe']['epochs'] == 2
  assert card['preprocessing']['kind'] == 'frames' and card['seed'] == 0
  summary = json.loads((run / 'summary.json').read_text())
  assert card['loso']['uf1'] == summary['uf1'] and card['another_run'] is None
  text = (out / 'README.md').read_text()
  assert 'every subject' in text and f"Expected accuracy: UF1 {summary['uf1']:.4f}" in text
  logits = model.apply(variables, np.zeros((2, 32, 32, 3), np.float32), train=False)
  assert logits.shape == (2, 3) and np.isfinite(logits).all()


def test_the_card_says_what_the_model_was_trained_on(final):
  """The dataset, its source folder, that it is synthetic, samples and subjects, what the
  build skipped (every listed sample absent from the copy: the composite's 442 less those
  built), the statistics of its training images; the title names the model once."""
  out, data, _ = final
  card = json.loads((out / 'model.json').read_text())
  trained = card['training_data']
  assert trained['dataset'] == 'synthetic' and trained['synthetic'] is True
  assert str(data / 'manual-1subjects-seed0') in trained['source']
  assert trained['data_dir'] == str((data / 'tfds-1subjects-seed0').resolve())
  assert trained['skipped_by_build'] == 442 - trained['samples'] > len(trained['skipped'])
  assert set(card['input_statistics']) == set(input_checks.VALUES)
  assert card['trained_on']['code'] == code_version()  # the git commit that trained it
  text = (out / 'README.md').read_text()
  title, _, synthetic = text.splitlines()[:3]
  assert title == '# tests.tiny:TinyNet trained on synthetic, every subject (SYNTHETIC data)'
  assert synthetic == 'SYNTHETIC: drawn faces, not a recogniser.'
  assert f"the build skipped {trained['skipped_by_build']} sample(s)" in text
  assert f'SYNTHETIC data, built from {data / "manual-1subjects-seed0"}): ' in text
  assert 'On synthetic data it measures the synthetic task only' in text


def test_no_progress_says_what_it_does(tmp_path, final, capsys):
  """--no_progress: the compile, then an epoch line (as its --help promises); no --loso: the
  card says the expected accuracy is not measured."""
  _, data, _ = final
  code = final_model.main([*FINAL, '--data_dir', str(data), '--out', str(tmp_path / 'm')])
  assert code == 0
  out = capsys.readouterr().out
  assert 'the first epoch compiles the training program' in out
  assert 'final model, train epoch 2/2: train loss' in out
  card = json.loads((tmp_path / 'm' / 'model.json').read_text())
  assert card['loso'] is None and card['another_run'] is None
  assert 'Expected accuracy: not measured' in (tmp_path / 'm' / 'README.md').read_text()


def _copy(run, folder, summary=None, drop=()):
  """A copy of the run folder (without its kept models), its summary edited."""
  shutil.copytree(run, folder, ignore=shutil.ignore_patterns('models', 'checkpoints'))
  if summary:
    path = folder / 'summary.json'
    record = json.loads(path.read_text())
    summary(record)
    path.write_text(json.dumps(record))
  for name in drop:
    (folder / name).unlink()
  return folder


def _partial(summary):
  summary.update(partial=True, subjects_covered=1, subjects_total=3)


@pytest.mark.parametrize(
  'extra, edit, message',
  [
    (['--epochs', '1'], None, 'epochs: 2 in the run, 1 here'),
    (['--size', '64'], None, 'size: 32 px in the run, 64 px here'),
    (['--model', 'tests.tiny:SlowTinyNet'], None, "model: 'tests.tiny:TinyNet' in the run"),
    (['--synthetic_subjects', '2'], None, 'synthetic_subjects: 1 in the run, 2 here'),
    (['--learning_rate', '0.01'], None, 'learning_rate: 0.001 in the run, 0.01 here'),
    ([], dict(summary=_partial), 'a part of a LOSO: 1 of 3 subjects tested'),
    ([], dict(drop=['summary.json']), 'no finished run there'),
  ],
)
def test_a_loso_that_is_not_of_this_model_is_refused(final, tmp_path, capsys, extra, edit, message):
  """Only a finished, whole LOSO of the same model, data, size and recipe is the expected
  accuracy; anything else is refused, naming the difference."""
  out, data, run = final
  if edit:
    run = _copy(run, tmp_path / 'run', **edit)
  args = [*FINAL, *extra, '--data_dir', str(data), '--out', str(tmp_path / 'm')]
  with pytest.raises(SystemExit) as e:
    final_model.main([*args, '--loso', str(run)])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert message in err and '--any_loso' in err or 'no finished run' in err, err
  assert not (tmp_path / 'm').exists()  # refused before training


def test_a_loso_of_other_data_is_refused(final, tmp_path, capsys):
  """The run's data fingerprint (state/run.json) against the model's data: a rebuild."""
  out, data, run = final

  def rebuilt(record):
    record['data']['images'] = '0' * 16

  copy = _copy(run, tmp_path / 'run')
  path = copy / 'state' / 'run.json'
  record = json.loads(path.read_text())
  rebuilt(record)
  path.write_text(json.dumps(record))
  args = [*FINAL, '--data_dir', str(data), '--out', str(tmp_path / 'm'), '--loso', str(copy)]
  assert final_model.main(args) == 2
  err = capsys.readouterr().err
  assert err.startswith('error: ') and 'the run trained on other data' in err


def test_another_runs_result_is_never_the_expected_accuracy(final, tmp_path):
  out, data, run = final
  args = [*FINAL, '--epochs', '1', '--data_dir', str(data), '--out', str(tmp_path / 'm')]
  assert final_model.main([*args, '--loso', str(run), '--any_loso']) == 0
  card = json.loads((tmp_path / 'm' / 'model.json').read_text())
  assert card['loso'] is None
  assert card['another_run']['differences'] == ['epochs: 2 in the run, 1 here']
  text = (tmp_path / 'm' / 'README.md').read_text()
  assert 'Expected accuracy: not measured' in text
  assert "Another run's result, NOT this model's expected accuracy" in text


def test_it_predicts_on_the_raw_clips(final, capsys):
  out, data, _ = final
  clips = sorted(p for p in (data / 'manual-1subjects-seed0' / 'smic').rglob('s*_*') if p.is_dir())
  assert clips
  assert predict_command.main(['--model', str(out), str(clips[0])]) == 0
  printed = capsys.readouterr().out
  assert clips[0].name in printed
  assert printed.startswith('SYNTHETIC: drawn faces, not a recogniser. model: ')


@pytest.fixture(scope='module')
def hfanet_variables():
  net = hfa_jax.HFANet(num_classes=3)
  init = jax.jit(net.init, compiler_options=QUICK_COMPILE)  # any weights do: 14 -> 7 s
  return init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))


def test_hfanet_folder_has_the_original_state_dict(tmp_path, hfanet_variables):
  variables = hfanet_variables
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


def _original_keys(sd: dict) -> dict:
  """{key: shape} of the original network's state dict: ../shared/reference's list where
  present, else the saved state dict's own."""
  from tests.reference import REFERENCE_DIR as REFERENCE

  listed = REFERENCE / 'state_dict_keys.txt'
  if not listed.is_file():
    return {k: tuple(v.shape) for k, v in sd.items()}
  out = {}
  for line in listed.read_text().splitlines()[1:]:
    key, shape = line.split('\t')
    out[key] = () if shape in ('', 'scalar') else tuple(int(n) for n in shape.split('x'))
  return out


@pytest.mark.parametrize('saved_as', ['hfa_net.pth', 'hfa_net_state_dict.npz'])
def test_the_cards_pytorch_snippet_runs_as_printed(
  saved_as, tmp_path, monkeypatch, hfanet_variables
):
  """The README of an HFA-Net folder holds a snippet that loads its state dict into the
  original network with strict=True (here a stand-in with the original's keys and shapes),
  from the .pth (saved where PyTorch is installed) or the .npz (saved where it is not)."""
  torch = pytest.importorskip('torch', reason='PyTorch is not installed: the snippet needs it')
  variables = hfanet_variables
  card = dict(model='hfanet', num_classes=3, class_names=['a', 'b', 'c'], input=dict(side=32))
  with monkeypatch.context() as m:
    if saved_as.endswith('.npz'):
      m.setitem(sys.modules, 'torch', None)  # as where PyTorch is not installed
    folder = trained.save_model(tmp_path / 'm', variables, card)
  assert (folder / saved_as).is_file()
  text = (folder / 'README.md').read_text()
  snippet = text.split('```python\n', 1)[1].split('```', 1)[0]
  assert 'net.load_state_dict(sd, strict=True)' in snippet
  saved = convert.to_torch_state_dict(jax.device_get(dict(variables)))
  original = torch.nn.Module()
  for key, shape in _original_keys(saved).items():
    *path, name = key.split('.')
    module = original
    for part in path:
      if not hasattr(module, part):
        module.add_module(part, torch.nn.Module())
      module = getattr(module, part)
    module.register_buffer(name, torch.zeros(shape))
  namespace = dict(net=original)
  exec(snippet, namespace)  # as printed, with `net` the original network
  for key, value in saved.items():
    np.testing.assert_array_equal(original.state_dict()[key].numpy(), value)


def test_the_card_says_what_it_cannot_know_and_its_figures_as_they_are():
  """Training data whose source copy was not there to check: neither 'real' nor silent; an
  accuracy of 0 is 0.0000, not 'nan'; a card's evaluation settings (as_trained) are its
  LOSO's: the recipe's test flip and flow normalisation."""
  card = dict(
    model='tests.tiny:TinyNet',
    num_classes=3,
    class_names=['a', 'b', 'c'],
    input=dict(side=32, test_flip=True, flow_norm='median'),
    training_data=dict(dataset='casme2', synthetic=None, samples=10, subjects=2),
    loso=dict(uf1=0.25, uar=0.3, accuracy=0.0, protocol='honest', run='r'),
  )
  text = trained.card_text(card)
  assert 'real or SYNTHETIC data: not known, its source copy was not there to check' in text
  assert 'UAR 0.3000, accuracy 0.0000:' in text
  assert predict.as_trained(card) == dict(test_flip=True, flow_norm='median')
  assert predict.as_trained(dict(input=dict(side=32))) == dict(test_flip=False, flow_norm='none')


def test_settings_a_final_model_cannot_follow_are_refused(tmp_path, capsys):
  """--resume (it would write the model into the LOSO run's own folder) and the settings of
  test folds (a final model has none: --subjects was recorded in its folder name, and ignored)
  stop before any data is read, saying why."""
  for argv, said in (
    (['--resume', str(tmp_path)], '--resume continues a LOSO run'),
    (['--dataset', 'synthetic', '--subjects', 'sub01'], '--subjects: a final model trains on'),
    (['--dataset', 'synthetic', '--group_folds', '3'], '--group_folds: a final model'),
  ):
    with pytest.raises(SystemExit):
      final_model.main(argv)
    assert said in capsys.readouterr().err, argv


def test_a_sigterm_stops_at_an_epochs_end_and_the_same_command_goes_on(tmp_path, tiny_data):
  """A preempted final model (SIGTERM) stops at the end of the epoch in progress, saved there,
  says how to go on and exits 143; the same command trains the epochs left (none twice) to
  the weights of an uninterrupted run and leaves no checkpoint in the model folder. A LOSO
  run's folder as --out is refused (its run is another), and `results` calls a stopped final
  model what it is."""
  import signal

  from experiments import results
  from tests.conftest import ROOT

  args = [*FINAL, '--model', 'tests.tiny:SlowTinyNet', '--epochs', '6']
  args += ['--checkpoint_minutes', '60', '--data_dir', str(tiny_data)]  # saved by the stop alone
  out = tmp_path / 'stopped'
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  command = [sys.executable, '-m', 'experiments.final_model', *args, '--out', str(out)]
  proc = subprocess.Popen(
    command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )
  for line in proc.stdout:  # the first epoch's line: training is under way
    if 'final model, train epoch 1/6' in line:
      break
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 143, err[-2000:]
  assert 'stopped by SIGTERM. Run the same command again to continue; the last checkpoint' in err
  assert 'Traceback' not in err and not (out / 'model.json').exists()
  assert list((out / 'state' / 'checkpoints').glob('[0-9]*'))
  assert 'a final model stopped while it trained' in results.what_it_is(out)
  again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert again.returncode == 0, again.stderr[-2000:]
  assert 'train epoch 1/6' not in again.stdout and 'train epoch 6/6' in again.stdout
  assert (out / 'model.json').is_file() and not (out / 'state').exists()
  assert final_model.main([*args, '--out', str(tmp_path / 'whole')]) == 0
  kept, whole = (trained.load_weights(o / 'weights') for o in (out, tmp_path / 'whole'))
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), kept, whole)


def test_a_loso_runs_folder_is_refused(tiny_run_copy, tiny_data, capsys):
  """--out of a LOSO run: its state/ holds another run, which the final model leaves alone."""
  before = sorted(p.name for p in (tiny_run_copy / 'state').iterdir())
  code = final_model.main([*FINAL, '--data_dir', str(tiny_data), '--out', str(tiny_run_copy)])
  assert code == 2 and 'holds a run with other settings' in capsys.readouterr().err
  assert sorted(p.name for p in (tiny_run_copy / 'state').iterdir()) == before
  assert not (tiny_run_copy / 'model.json').exists()
