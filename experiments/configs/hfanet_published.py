"""HFA-Net as its authors' public working script trains it: NOT an honest protocol.

    python -m experiments.loso --dataset megc2019_flow_images --config hfanet_published

The script is `train1.py` of the authors' public working repository jiujiugang/HFA-Net
(commit cfdcd42), HTNet's LOSO template around their network (`DualInception`):
- Adam (torch.optim.Adam, no weight decay), learning rate 0.00005, constant: `optimizer`,
  `learning_rate`, `weight_decay`, `schedule` (train1.py main(): learning_rate, Adam);
- batch 32 (the declared default, not restated below), 40 epochs (train1.py main():
  batch_size = 32, epochs = 40; the sibling train.py uses 64 and 60 with another network);
- no augmentation (the tensors go to the DataLoader as they are);
- after every epoch the test subject is evaluated, and the predictions of its best test
  accuracy are kept (`if best_accuracy_for_each_subject <= val_acc`; training stops at 100%):
  `select_epoch='best_test'`. The results of this recipe say that they are NOT honest.

What differs here, and why: the flow images are scaled to -1..1 as this project's pipeline
gives them (the script feeds cv2.imread's 0..255 BGR values); HFA-Net needs a side that is a
multiple of 32, so the 28 px images are resized to 32 px (the script feeds them to a network
built for 224 px); training samples are drawn in a random order each epoch (the script's
DataLoader does not shuffle); ties between equally accurate epochs go to the earlier one
(the script's `<=` keeps the later one, and stops at the first 100%).
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      epochs=40,
      learning_rate=5e-5,
      schedule='constant',
      optimizer='adam',
      weight_decay=0.0,
      augment='none',
      select_epoch='best_test',
    )
  )
