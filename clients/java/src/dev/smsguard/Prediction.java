package dev.smsguard;

/** A message's spam probability and its label at the model's threshold. Immutable. */
public final class Prediction {
    private final float probability;
    private final String label;
    private final boolean spam;

    Prediction(float probability, String label, boolean spam) {
        this.probability = probability;
        this.label = label;
        this.spam = spam;
    }

    /** The model's probability of the positive label ("spam"), in [0, 1]. */
    public float probability() {
        return probability;
    }

    /** The bundle's label for it: the positive one ("spam") at or above the threshold, else the negative one ("ham"). */
    public String label() {
        return label;
    }

    /** Whether the label is the positive one. */
    public boolean isSpam() {
        return spam;
    }

    @Override
    public String toString() {
        return label + " (" + probability + ")";
    }
}
