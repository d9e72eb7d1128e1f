package shop.recommender.analysis;

import java.util.Locale;
import java.util.function.UnaryOperator;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.elasticsearch.plugin.Inject;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.StringSetting;
import org.tartarus.snowball.ext.EnglishStemmer;

/**
 * {@code stemmer}: the English subset of the built-in filter of the same name, chosen with
 * {@code language} (or its alias {@code name}). Other languages are refused with an error rather than
 * silently left unstemmed.
 */
@NamedComponent("stemmer")
public class StemmerTokenFilterFactory implements TokenFilterFactory {

    /** Settings of a {@code stemmer} filter definition in an index's analysis settings. */
    @AnalysisSettings
    public interface Settings {
        @StringSetting(path = "language", defaultValue = "")
        String language();

        @StringSetting(path = "name", defaultValue = "")
        String name();
    }

    static final String SUPPORTED =
            "english, porter, light_english, kstem, minimal_english, possessive_english, porter2";

    private final UnaryOperator<TokenStream> stemmer;

    /** Without {@code language} or {@code name} (also when named without a definition): English (Porter). */
    @Inject
    public StemmerTokenFilterFactory(Settings settings) {
        String language = settings.language().isEmpty() ? settings.name() : settings.language();
        this.stemmer = forLanguage(language.isEmpty() ? "english" : language);
    }

    static UnaryOperator<TokenStream> forLanguage(String language) {
        return switch (language.toLowerCase(Locale.ROOT)) {
            case "english", "porter" -> PorterStemFilter::new;
            case "light_english", "kstem" -> KStemFilter::new;
            case "minimal_english" -> EnglishMinimalStemFilter::new;
            case "possessive_english" -> EnglishPossessiveFilter::new;
            case "porter2" -> in -> new SnowballFilter(in, new EnglishStemmer());
            default -> throw new IllegalArgumentException(
                    "stemmer language [" + language + "] is not available on this node; supported: " + SUPPORTED);
        };
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return stemmer.apply(tokenStream);
    }
}
