"""experiments.profile_step: HLO metadata parsing (hand-checked) and one profiled run."""

from experiments import profile_step
from hfa_jax import kernels
from tests import native

HLO = '''
ENTRY %main {
  %p0 = f32[16,8,8,64]{3,2,1,0} parameter(0)
  %ynn_fusion.3 = f32[512,64]{1,0} fusion(%p0), kind=kCustom, metadata={op_name="jit(step)/transpose(jvp(HFANet))/rmt/layer3/blocks_0/ffn/fc1/dot_general" stack_frame_id=3}
  ROOT %add.1 = f32[64]{0} add(%x, %y), metadata={op_name="jit(step)/add"}
}
'''


def test_op_sources_and_modules():
  sources = profile_step.op_sources(HLO)
  assert sources['ynn_fusion.3'] == (
    'f32[512,64]{1,0}',
    'jit(step)/transpose(jvp(HFANet))/rmt/layer3/blocks_0/ffn/fc1/dot_general',
  )
  assert sources['add.1'] == ('f32[64]{0}', 'jit(step)/add')
  assert sources['p0'][1] == ''
  assert profile_step.module_of(sources['ynn_fusion.3'][1], 2) == ('rmt/layer3', 'bwd')
  assert profile_step.module_of(sources['ynn_fusion.3'][1], 4) == ('rmt/layer3/blocks_0/ffn', 'bwd')
  assert profile_step.module_of('jit(step)/jvp(HFANet)/msa/conv1/conv', 1) == ('msa', 'fwd')
  assert profile_step.module_of('', 2) == ('(no metadata)', 'fwd')
  # the LOSO fold program: vmapped, in a scan, in platform-dependent branches
  fold_op = (
    'jit(call)/vmap()/while/body/closed_call/transpose(jvp(HFANet))/rmt/layer4/downsample/'
    'reduction/cond/branch_0_fun/ffi_call'
  )
  assert profile_step.module_of(fold_op, 2) == ('rmt/layer4', 'bwd')
  stst_op = 'jit(epoch_one)/vmap()/while/body/closed_call/transpose(jvp(STSTNet))/bn2/mul'
  assert profile_step.module_of(stst_op, 2) == ('bn2/mul', 'bwd')
  adamw_op = 'jit(call)/vmap()/while/body/closed_call/adamw/cond/branch_0_fun/ffi_call'
  assert profile_step.module_of(adamw_op, 2) == ('adamw/ffi_call', 'fwd')


def test_profiles_a_small_step(tmp_path, capsys):
  """HFA-Net's training step at 32 px, its ops grouped by HFA-Net's modules, a trace kept.
  (The fold program's path is profiled with STSTNet below: one HFA-Net compile, not two.)"""
  result = profile_step.main(
    ['--side', '32', '--steps', '1', '--top', '5', '--trace', str(tmp_path / 'trace')]
  )
  out = capsys.readouterr().out
  assert result['step_s'] > 0 and result['ops']
  assert any(k.startswith('rmt/') for k in result['modules'])
  assert any(k.startswith('msa/') for k in result['modules'])
  assert 'module (direction)' in out and 'trace in' in out and 'folds 1' in out
  if native.absent_for_a_reason() is None:  # the kernels must have built: the step calls them
    assert 'ffi_call' in result['kinds'], kernels.unavailable_reason()
  assert list((tmp_path / 'trace').rglob('*.trace.json.gz'))


def test_profiles_ststnets_fold_program(capsys):
  """The LOSO fold program (2 stacked folds, epochs of 2 steps): its ops under the vmap and the
  epoch's loop still grouped by module, the optimizer named."""
  argv = ['--model', 'ststnet', '--batch_size', '4', '--folds', '2', '--epoch_steps', '2']
  result = profile_step.main([*argv, '--steps', '1'])
  out = capsys.readouterr().out
  assert result['step_s'] > 0 and 'ststnet, side 28, batch 4, folds 2' in out
  assert any(k.startswith('fc') for k in result['modules'])  # STSTNet's own modules, named
  assert any(k.startswith('adamw') for k in result['modules'])  # the optimizer, named
