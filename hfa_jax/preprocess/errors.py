"""The one exception type of the preprocessing library."""


class PreprocessError(ValueError):
  """Bad input for one sample: missing or unreadable frame, empty clip, wrong shapes.

  The message names the file or sample and says what to check. Builders catch it to
  skip the sample (listing it in their summary) or to stop, as the user chose.
  """
