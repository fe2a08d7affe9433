// Pickers by their old module path (one file each under plugins/).
export { MaxScorePicker } from "./plugins/max-score-picker";
export { RandomPicker } from "./plugins/random-picker";
export { WeightedRandomPicker } from "./plugins/weighted-random-picker";
